"""Every architecture lives in one file here and registers itself with ms_osr.registry.

Importing this package does not import the architectures; ``ms_osr.registry`` loads
them on first use so that ``create_model`` sees every registration.
"""
