"""Errors a person can act on, raised by the services and models."""


class WagtailLiveError(Exception):
    """Base class for every error this app raises on purpose."""


class InvalidTransition(WagtailLiveError):
    """A live session was asked to move to a state it cannot reach from where it is."""


class PermissionDenied(WagtailLiveError):
    """The user may not do this to this session."""
