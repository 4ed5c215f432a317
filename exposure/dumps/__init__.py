"""Streaming readers for leaked dumps: decoding, containers and line/record formats."""
