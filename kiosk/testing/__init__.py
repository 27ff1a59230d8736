"""Testing support for kiosk: the reference simplejwt server, fault injection, pytest fixtures."""
