"""(being written)"""


def register(registry) -> None:
    pass
