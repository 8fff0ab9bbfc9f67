"""Readers: raw files of each format family parsed into one raw form (``raw``), then
validated and coded into the data model (``coding``); ``registry.FORMATS`` names them."""
