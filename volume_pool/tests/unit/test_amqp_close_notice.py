"""Only py-amqp's Basic.Cancel notice during a channel close is demoted;
its other warnings stay warnings."""

import logging

import pytest

from volume_pool import amqp_close_notice

NOTICE = ('Received method %s during closing channel %s. This method will '
          'be ignored')


@pytest.fixture
def amqp_records():
    logger = logging.getLogger('amqp')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    level, filters = logger.level, list(logger.filters)
    logger.addHandler(handler)
    amqp_close_notice.install()
    amqp_close_notice.install()  # once is enough
    yield logger, records
    logger.removeHandler(handler)
    logger.filters[:] = filters
    logger.setLevel(level)


def test_the_cancel_notice_at_close_is_not_a_warning(amqp_records):
    logger, records = amqp_records
    logger.setLevel(logging.INFO)
    logger.warning(NOTICE, (60, 30), 1)
    assert records == []
    assert len([f for f in logger.filters if isinstance(
        f, amqp_close_notice.FanoutCancelAtClose)]) == 1


def test_it_is_a_debug_line_when_debug_is_on(amqp_records):
    logger, records = amqp_records
    logger.setLevel(logging.DEBUG)
    logger.warning(NOTICE, (60, 30), 1)
    assert [r.levelname for r in records] == ['DEBUG']


def test_other_methods_during_close_stay_warnings(amqp_records):
    logger, records = amqp_records
    logger.setLevel(logging.INFO)
    logger.warning(NOTICE, (60, 60), 1)  # a Basic.Deliver
    logger.warning('Something else')
    assert [r.levelname for r in records] == ['WARNING', 'WARNING']
