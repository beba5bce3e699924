"""Midjourney jobs in the midjourney-proxy shape (novicezk/midjourney-proxy and its forks' /mj API).

Submit a task (/mj/submit/imagine, /action, /change, /simple-change), then poll it
(/mj/task/{id}/fetch, /mj/task/list-by-condition) or be called back at its notifyHook.
Each `mj-api-secret` is an account, and sees only its own tasks. An IMAGINE answers one
2x2 grid of four images (`GRID_IMAGES`) at one imageUrl, so one request is four images.

proxy.py has the routes, store.py the bounded task store, notify.py the callbacks,
actions.py the buttons, view.py the task's JSON, options.py the operator's settings.
"""

from .actions import GRID_IMAGES
from .options import MidjourneyOptions, add_arguments, options_from_args
from .proxy import MidjourneyJobs

__all__ = ["GRID_IMAGES", "MidjourneyJobs", "MidjourneyOptions", "add_arguments", "options_from_args"]
