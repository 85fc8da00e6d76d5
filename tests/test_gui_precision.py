"""The landscape form's precision setting, and the shown landscape's precision in its status line."""

from __future__ import annotations

from gui_helpers import fake_landscape


def test_landscape_form_sends_the_precision_and_the_status_shows_the_choice(qtbot) -> None:
    from wmstudio.gui.landscape_view import LandscapeView

    view = LandscapeView()
    qtbot.addWidget(view)
    assert view.spec().precision == "auto"  # the default: bf16 only where it is fast and checked
    view.precision.setCurrentText("fp32")
    assert view.spec().precision == "fp32"
    sent: list = []
    view.compute_requested.connect(sent.append)
    view.published_button.setEnabled(True)
    view.published_button.click()
    assert sent and sent[-1].kind == "pca" and sent[-1].precision == "fp32"
    ls = fake_landscape("plane", "checked")
    ls.attrs.update(eval_precision="fp32", eval_precision_reason="auto: the bf16 check failed at point 40: test_acc")
    view.show_landscape(ls)
    assert view.status.text().endswith("81/81 points, fp32")
    assert "check failed at point 40" in view.status.toolTip()
    checked = fake_landscape("plane", "with figures")  # the check's tolerance and figures under the reason
    checked.attrs.update(eval_precision="bf16", eval_precision_reason="auto: CPU has amx_bf16, and 4 checked points agree",
                         eval_precision_tolerance="losses within 1% relative, accuracies within 0.005 absolute",
                         eval_precision_check=[{"index": 40, "test_loss_fp32": 0.3, "test_loss_bf16": 0.301,
                                                "test_acc_fp32": 0.9, "test_acc_bf16": 0.9, "test_acc_up": 1,
                                                "test_acc_down": 1}])
    view.show_landscape(checked)
    tip = view.status.toolTip().splitlines()
    assert tip[0] == "evaluated in bf16: auto: CPU has amx_bf16, and 4 checked points agree"
    assert tip[1].startswith("bf16 check (losses within 1% relative") and tip[2].startswith("  point 40: test loss 0.3/0.301")
    view.show_landscape(fake_landscape("plane", "old"))  # a landscape from before the setting: no claim
    assert view.status.text().endswith("81/81 points") and view.status.toolTip() == ""


def test_a_landscape_in_another_precision_or_on_other_images_gets_its_own_name(qtbot) -> None:
    """Computing again with Precision fp32 had clashed with the stored auto landscape ("exists with other
    settings"), and the form has no name field."""
    from wmstudio.gui.landscape_view import LandscapeView

    view = LandscapeView()
    qtbot.addWidget(view)
    view.kind.setCurrentText("plane")
    view.resolution.setValue(31)
    assert view.spec().name == "plane-31"  # the defaults: no tags
    view.precision.setCurrentText("fp32")
    assert view.spec().name == "plane-31-fp32"
    view.images.setValue(2000)
    view.data.setCurrentText("owner")
    assert view.spec().name == "plane-31-owner-2000img-fp32"
    tip = view.precision.toolTip()
    assert tip.startswith("<p>") and "&#x27;" not in tip and "images' forward pass" in tip  # wraps, reads right
