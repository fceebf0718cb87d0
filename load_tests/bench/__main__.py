import sys

from load_tests.bench.run import main

sys.exit(main())
