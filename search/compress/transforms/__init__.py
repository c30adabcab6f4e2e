"""The compression methods: one module per method, each registering its transform on import
(search/compress/registry.py discovers every module of this package). Adding a method is one new
file here plus its tests."""
