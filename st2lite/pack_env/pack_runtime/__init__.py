"""Code shared by the runtime and the processes that run a pack's actions and sensors.

Standard library only: it is imported from both virtualenvs.
"""
