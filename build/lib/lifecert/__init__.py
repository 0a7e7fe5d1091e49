"""lifecert: proof-of-life for pension agencies.

The core library holds no HTTP code. Layering (imports point one way):
server / enrollment -> lifecert.services -> lifecert.engine / lifecert.storage -> lifecert.domain.
"""

__version__ = "0.1.0"
