def greet(name):
    return "HI, " + name.upper() + "!"
