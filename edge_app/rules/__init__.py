"""Alert rules: a pure engine turning observations into alert start/update/end transitions."""
