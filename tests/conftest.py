import torch

# The tensors in these tests are tiny; one intra-op thread avoids thread-pool spinning on a busy
# 2-core machine (the CLI does the same, see sgdtui.cli.configure_threads).
torch.set_num_threads(1)
