"""juliafarm renderer: exact, fast Julia-set animations from a TOML scene."""

__version__ = "0.1.0"
