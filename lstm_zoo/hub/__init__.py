"""Pretrained models: pulling verified versions (:mod:`.pretrained`), remote hubs over HTTP
(:mod:`.download`), the index/manifest chain of trust (:mod:`.manifest`) and publishing
finished runs (:mod:`.publish`).
"""

from lstm_zoo.hub.manifest import HubError, IntegrityError
from lstm_zoo.hub.pretrained import available, load_pretrained, pull

__all__ = ["HubError", "IntegrityError", "available", "load_pretrained", "pull"]
