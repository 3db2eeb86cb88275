import pathlib
import sys

# tests/ holds shared builders; make `tests.builders` importable from any test module.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
