//! Runnable templates for tickguard: see the `examples` directory.
