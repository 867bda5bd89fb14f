"""Command-line programs. One module per command, each with ``build_parser(prog)`` and
``main(argv=None, prog=None) -> int`` (the exit status).

The top-level scripts ``demo.py``, ``evaluate.py`` and ``train_dist.py`` and
``data_prep/convert_checkpoint.py`` are thin wrappers around these modules.
"""
