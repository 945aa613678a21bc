"""Networks ranked without training them: zero-cost scores of a network or of networks drawn
from a family's space on one seeded batch (score.py; the proxies themselves are
`netdsl_runtime.proxies`), kept in a cache (cache.py), and measured against a table's truth
(agreement.py)."""
from .agreement import TOP, agreement, json_safe, rankings
from .cache import CACHE_FILE, ScoreCache
from .scores import (ALL, BATCH_SIZE, DATA_FREE, SCORES, Scored, drawn_networks, every_network,
                    proxy_names, score, scoring_batch)

__all__ = ["ALL", "BATCH_SIZE", "CACHE_FILE", "DATA_FREE", "SCORES", "TOP", "ScoreCache",
           "Scored", "agreement", "drawn_networks", "every_network", "json_safe",
           "proxy_names", "rankings", "score", "scoring_batch"]
