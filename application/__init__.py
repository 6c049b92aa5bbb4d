"""The application service: recording facts (write side) and the questions asked of them."""
