"""aqaa: end-to-end spoken dialogue (audio query -> audio answer), after Step-Audio-AQAA."""

__version__ = "0.1.0"
