"""Shared pytest settings: the ``slow`` marker (training runs; CI runs them too)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model for up to a few minutes on CPU")
