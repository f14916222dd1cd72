"""The engine: what moves traffic and gives it back.

`shift` steps a deployment's weights and bakes each step (`bake`) under its guards
(`guard`); `restore` is the one way a snapshot is written back; `takeover` is how anyone else
(an operator's rollback, the watchdog) takes a deployment over and how a woken driver gives a
late write back; `control` acts on a deployment from outside it; `watchdog` is one pass of the
stack's watchdog; `plan` turns steps into weights.
"""
