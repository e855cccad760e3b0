from shopcart import inventory


def test_restock_then_reserve():
    inventory.restock("plum", 5)
    assert inventory.reserve("plum", 2)
    assert inventory.level("plum") == 3
