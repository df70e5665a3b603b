"""st2's ``Action`` base class, as python-script actions import it.

    from st2common.runners.base_action import Action

    class Hello(Action):
        def run(self, name):
            return True, f"hello {name}"
"""

from __future__ import annotations

import abc
import logging
from typing import Any


class Action(abc.ABC):
    """Base class of a python-script action: st2 builds a fresh instance per execution."""

    def __init__(self, config: dict[str, Any] | None = None, action_service: Any = None) -> None:
        self.config = config or {}
        self.action_service = action_service
        self.logger = logging.getLogger(f"st2.actions.{type(self).__name__}")

    @abc.abstractmethod
    def run(self, **kwargs: Any) -> Any:
        """Do the work; return a result, or ``(succeeded: bool, result)``."""
