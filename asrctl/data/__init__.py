"""Rows and audio in: manifest rows and their paths, audio decoding and header probes, dataset
formats and their detection, and the batching of utterances by duration."""
