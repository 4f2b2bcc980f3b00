"""Start moto's server on 127.0.0.1:<port>, patched to behave like real AWS
where this project's validation depends on it.

moto 5.2.5 mints permission set ARNs as arn:aws:sso:::instance/ssoins-../ps-..;
real Identity Center answers arn:aws:sso:::permissionSet/ssoins-../ps-... We
fix moto rather than loosen the product's validation.

MOTO_PERMISSION_SET_IDS (optional, comma-separated, e.g. "ps-12345") makes the
first permission sets created take those ids, so the seed README's example
message (ps-12345) works verbatim against a local stack. moto does not check
instance ARNs, so callers pick their own (arn:aws:sso:::instance/ssoins-12345).
"""

import os
import sys

from moto.moto_api._internal import mock_random as random
from moto.ssoadmin import models as ssoadmin

fixed_ps_ids = [p for p in os.environ.get("MOTO_PERMISSION_SET_IDS", "").split(",") if p]


def generate_id(instance_arn: str) -> str:
    base = instance_arn.replace(":instance/", ":permissionSet/", 1)
    if fixed_ps_ids:
        return f"{base}/{fixed_ps_ids.pop(0)}"
    return f"{base}/ps-{random.get_random_string(length=16).lower()}"


ssoadmin.PermissionSet.generate_id = staticmethod(generate_id)

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    port = sys.argv[1] if len(sys.argv) > 1 else "5000"
    main(["-H", "127.0.0.1", "-p", port])
