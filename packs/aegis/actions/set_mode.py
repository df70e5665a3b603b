from base import AegisAction
from mode import MODE_KEY, effective_mode


class SetMode(AegisAction):
    """Write (or clear) the aegis.mode override and report the mode now in force."""

    def run(self, mode: str, reason: str = "") -> dict:
        read = lambda key: self.action_service.get_value(key, local=False)  # noqa: E731
        before, _ = effective_mode(self.config, read)
        if mode == "clear":
            self.action_service.delete_value(MODE_KEY, local=False)
        else:
            self.action_service.set_value(MODE_KEY, mode, local=False)
        after, source = effective_mode(self.config, read)
        self.logger.warning("aegis mode %s -> %s (%s): %s", before, after, source, reason or "no reason given")
        return {"previous": before, "mode": after, "source": source, "reason": reason}
