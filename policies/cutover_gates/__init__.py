"""The policy pack's library: gate records and the rules shared with the program and the helper.

It lives inside `policies/` so `pulumi policy publish` uploads a self-contained pack; the
`cutover` distribution installs the same folder as the `cutover_gates` package.
"""
