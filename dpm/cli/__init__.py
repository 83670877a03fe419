"""Command-line front ends; each ``*_main(argv=None) -> int`` backs one command in ``bin/``."""
