"""The names of the zero-cost proxies `runtime.proxies` computes, kept apart from it and from
torch: a command line offers and checks them before it imports torch (`runtime.proxies` pairs
each with its function, in this order)."""

# The network's size first (its trained weights), then the proxies proper.
PROXY_NAMES = ("weights", "grad_norm", "snip", "synflow", "naswot", "meco")
# AZ-NAS's scores of a network's stages (runtime.proxies.az_nas_parts: one pass gives all three)
AZ_NAS_PARTS = ("expressivity", "progressivity", "trainability")
