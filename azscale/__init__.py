"""azscale: AlphaZero scaling studies on OpenSpiel games."""

__version__ = "0.1.0"
