"""OLMoE-mini's facts (checkpoints, architecture, context), from the one JSON file the site reads too."""
import json
import os

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "lib", "model", "olmoe-mini.json")
with open(_PATH) as f:
    FACTS = json.load(f)

CHECKPOINTS = tuple(FACTS["checkpoints"])
ARCHITECTURE = dict(FACTS["architecture"])
CONTEXT = FACTS["context"]
BATCH_SEQUENCES = FACTS["batch_sequences"]
