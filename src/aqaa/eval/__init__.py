"""Evaluation from the speech itself (work in progress: only prosody measurement exists so far)."""
