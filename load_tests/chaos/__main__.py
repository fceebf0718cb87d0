import sys

from load_tests.chaos.run import main

sys.exit(main())
