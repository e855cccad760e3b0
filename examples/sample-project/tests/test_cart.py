from shopcart.cart import Cart


def test_add_and_subtotal():
    cart = Cart()
    cart.add("apple", quantity=3, unit_price=0.5)
    assert cart.subtotal() == 1.5


def test_add_rejects_zero_quantity():
    cart = Cart()
    try:
        cart.add("apple", quantity=0, unit_price=1.0)
    except ValueError:
        return
    raise AssertionError("zero quantity accepted")


def test_discount_applies_to_total():
    cart = Cart(coupon="SPRING10")
    cart.add("pear", quantity=1, unit_price=9.99)
    assert cart.total() == 8.99
