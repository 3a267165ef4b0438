"""The end-to-end demo (`make demo`) and the stack it runs, which the end-to-end tests reuse."""
