"""On-device models: the TFLite runtime shim and one typed interface per model kind."""
