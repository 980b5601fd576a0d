import io

from ignite.engine import Engine, Events

from ignite_mnist.handlers.progress import LogProgress, attach_progress, resolve_progress_mode


def test_auto_mode_is_log_when_not_a_terminal():
    assert resolve_progress_mode("auto", io.StringIO()) == "log"
    assert resolve_progress_mode("bar", io.StringIO()) == "bar"


def test_log_mode_writes_plain_lines_at_a_bounded_rate():
    stream = io.StringIO()
    trainer = Engine(lambda e, b: None)
    log = LogProgress(interval=3600, stream=stream)
    trainer.add_event_handler(Events.STARTED, log.started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, log.iteration_completed)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, log.epoch_completed)
    trainer.run(range(500), max_epochs=2)
    lines = stream.getvalue().splitlines()
    assert lines == ["epoch 1/2 done", "epoch 2/2 done"]  # no iteration line within the hour

    stream = io.StringIO()
    log = LogProgress(interval=0, stream=stream)
    trainer = Engine(lambda e, b: None)
    trainer.add_event_handler(Events.STARTED, log.started)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, log.iteration_completed)
    trainer.run(range(3), max_epochs=1)
    assert stream.getvalue().count("\n") == 3 and "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines()[0].startswith("epoch 1/1  iteration 1/3")


def test_none_attaches_nothing():
    trainer = Engine(lambda e, b: None)
    progress = attach_progress(trainer, mode="none")
    assert (progress.mode, progress.bars, progress.log) == ("none", [], None)
