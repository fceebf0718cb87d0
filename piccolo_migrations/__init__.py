"""Schema migrations (Piccolo). Nothing but migrations lives here: Piccolo imports every file."""
