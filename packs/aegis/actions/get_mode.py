from base import AegisAction
from mode import effective_mode


class GetMode(AegisAction):
    def run(self) -> dict:
        mode, source = effective_mode(self.config, lambda key: self.action_service.get_value(key, local=False))
        return {"mode": mode, "source": source}
