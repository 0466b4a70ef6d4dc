import torch

# The tensors in these tests are tiny; one intra-op thread avoids thread-pool spinning on a busy
# 2-core machine (the CLI does the same, see sgdtui.cli.configure_threads).
torch.set_num_threads(1)

import os

from hypothesis import settings

# In CI, property tests draw the same examples every run, so a green build stays green.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
