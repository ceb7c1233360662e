import wit_world

VALUE = "unset"


class WitWorld(wit_world.WitWorld):
    def component_init(self) -> None:
        global VALUE
        VALUE = "set by init"

    def answer(self) -> str:
        return VALUE
