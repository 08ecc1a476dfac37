"""mac_learning = controller | learn: one object per mode, chosen once; an unknown mode is an error."""

import pytest

from controller.pipeline import learning_modes
from controller.pipeline.learning_modes import MODE_LEARN
from controller.shell import config
from controller.shell.config import defaults


def test_modes_are_chosen_by_name_and_an_unknown_one_is_an_error():
    assert defaults().learning is learning_modes.get("controller")
    assert defaults(mac_learning=MODE_LEARN).learning is learning_modes.get("learn")
    opt = next(o for o in config.OVERLAY_OPTS if o.name == "mac-learning")
    assert list(opt.type.choices) == list(learning_modes.MODES)
    with pytest.raises(ValueError, match="hub"):
        defaults(mac_learning="hub")


def test_only_the_controller_mode_learns_from_packet_ins_and_prunes_floods():
    by_controller, by_switch = defaults().learning, defaults(mac_learning=MODE_LEARN).learning
    assert by_controller.learns_from_packet_ins and not by_switch.learns_from_packet_ins
    assert list(by_controller.flood_peers({"h2"}, ["h1", "h2", "h3"])) == ["h2"]
    assert list(by_switch.flood_peers({"h2"}, ["h1", "h2", "h3"])) == ["h1", "h2", "h3"]
    assert by_switch.keeps_switch_entries and not by_controller.keeps_switch_entries
    assert by_switch.meters(learn_rate=200, flood_rate=100) == ()
