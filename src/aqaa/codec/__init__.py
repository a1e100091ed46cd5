"""Audio tokenizers: speech → discrete codes (linguistic 16.7 Hz, semantic 25 Hz) and their interleaving."""
