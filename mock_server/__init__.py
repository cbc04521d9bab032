"""refund-mock-server: an offline sandbox for the Afterpay v2 and Optty refund APIs."""

__version__ = "0.1.0"
