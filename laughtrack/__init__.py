"""laughtrack: find the laughter and applause in videos."""

__version__ = "0.1.0"
