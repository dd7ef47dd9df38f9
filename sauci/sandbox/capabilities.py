"""What a step asks of its sandbox that the sandbox cannot enforce.

The check reads only the step and the sandbox's ``capabilities``, so it lives
in the core (:mod:`sauci.core.capabilities`), which runs it before each step;
it is named here too, beside the sandboxes whose capabilities it reads.
"""

from sauci.core.capabilities import check_capabilities

__all__ = ["check_capabilities"]
