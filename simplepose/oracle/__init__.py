"""Oracles: ground truth rendered into exactly the maps a network is trained to output,
then decoded by the inference path. They measure what a representation plus its decoding
loses before any network is involved."""
