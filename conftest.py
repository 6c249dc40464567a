"""Repository-wide pytest settings.

CI runs hypothesis derandomized (``HYPOTHESIS_PROFILE=ci`` in .ci/run), so a
landing is decided by the code, not by the draw; local runs keep exploring
new examples each time.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
