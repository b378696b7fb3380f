"""Test doubles for tools that cannot be installed on the test machines."""
