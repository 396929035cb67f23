"""The exceptions leadlink raises for problems a user can fix.

The command-line tool prints these as one clear message and exits with a
non-zero status instead of showing a stack trace.
"""


class LeadlinkError(Exception):
    """Base class for every error caused by input, configuration or state."""


class WorkspaceError(LeadlinkError):
    """A workspace folder or one of its tables breaks the contract."""


class LinkageError(LeadlinkError):
    """Record linkage could not be trained or applied."""


class TrainingError(LeadlinkError):
    """A model could not be trained from the data given."""


class ModelNotFoundError(LeadlinkError):
    """No registered model matches the URI or alias requested."""
