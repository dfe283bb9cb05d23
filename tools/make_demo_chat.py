#!/usr/bin/env python3
"""Generate the bundled demo chat dataset ``speculators_core/assets/demo_chat.jsonl``.

The dataset is a small, deterministic mix of chat conversations used for demo
runs and for exercising the data-preparation code on both common schemas:

* ShareGPT style: ``{"id": ..., "conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``
* OpenAI style:   ``{"id": ..., "messages": [{"role": "system"|"user"|"assistant", "content": ...}]}``

Conversations are composed from hand-written building blocks (topic
question/answer pairs, topic-specific follow-ups, generic follow-ups and system
prompts) with a seeded RNG, so re-running the script reproduces the file
byte-for-byte.  Standard library only.

Usage::

    python tools/make_demo_chat.py                 # writes the bundled asset
    python tools/make_demo_chat.py -o out.jsonl --seed 7 -n 220

Building-block format (inside the ``BLOCKS`` strings below)::

    @@ category           start a category (applies to following entries)
    Q: question           one or more phrasings of the same question
    A: answer             answer; may continue over following lines
    S: short answer       optional one/two-sentence summary (used by "make it shorter")
    F: follow-up          optional topic-specific follow-up question ...
    FA: answer            ... and its answer (may continue over following lines)
    %%                    end of entry
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "speculators_core" / "assets" / "demo_chat.jsonl"
DEFAULT_SEED = 20240611
DEFAULT_COUNT = 220

BLOCKS: list[str] = []

BLOCKS.append(r"""
@@ cooking
Q: How do I cook rice on the stove so it doesn't turn out mushy?
Q: What's the best way to make fluffy white rice in a pot?
A: Fluffy stovetop rice mostly comes down to three things: rinsing, the right amount of water, and leaving the lid alone.

1. Rinse 1 cup of long-grain white rice in a sieve under cold water until the water runs mostly clear. This washes off surface starch, which is what makes rice gummy.
2. Put the rice in a pot with 1½ cups of water and a pinch of salt. Bring it to a boil uncovered.
3. As soon as it boils, turn the heat down to the lowest setting, cover with a tight lid, and cook for 15 minutes. Don't lift the lid — the steam is doing the cooking.
4. Take the pot off the heat and let it sit, still covered, for 10 minutes.
5. Fluff with a fork and serve.

If your rice is usually mushy, try cutting the water back by a couple of tablespoons. If it's crunchy, your lid probably isn't sealing well; put a clean kitchen towel under the lid next time.
S: Rinse the rice, use about 1½ cups of water per cup of rice, simmer covered on low for 15 minutes, then rest it off the heat for 10 minutes before fluffing.
F: Does the same ratio work for brown rice?
FA: Not quite. Brown rice still has its bran layer, so it needs more water and more time. A good starting point is 1 cup of brown rice to 2¼ cups of water, simmered covered for about 40–45 minutes, then rested for 10 minutes. Some people prefer the "pasta method" for brown rice: boil it in a big pot of salted water for 30 minutes, drain it, return it to the pot, cover, and let it steam for 10 minutes. It's very forgiving.
%%
Q: What can I make for dinner with eggs, spinach, and some leftover cheese?
A: A frittata is perfect for that. Here's a simple version for two people:

- Whisk 6 eggs with a pinch of salt, some pepper, and a splash of milk if you have it.
- In an oven-safe skillet, soften a small chopped onion (optional) in a little olive oil, then add two big handfuls of spinach and stir until it wilts.
- Pour in the eggs, scatter the cheese on top, and cook over medium-low heat without stirring for about 5 minutes, until the edges are set.
- Move the pan under a hot broiler for 2–3 minutes until the top is puffed and lightly golden.

Let it cool for a few minutes, then slice it like a pie. It's good with toast or a simple salad, and leftovers are great cold the next day.
S: Make a frittata: wilt the spinach, pour in whisked eggs, top with the cheese, cook gently until the edges set, and finish under the broiler.
F: I don't have an oven-safe pan. What should I do?
FA: You can finish it on the stovetop instead. Once the edges are set, cover the pan with a lid and keep the heat low for another 5–8 minutes, until the center is no longer runny. Or, if you're feeling brave, slide the frittata onto a plate, flip the pan over the plate, and turn the whole thing back into the pan to cook the other side for a minute or two.
%%
Q: Why do recipes say to let meat rest after cooking?
A: When meat cooks, the muscle fibers tighten and push moisture toward the center. If you cut it right away, a lot of that juice runs out onto the cutting board. Resting gives the fibers time to relax and lets the juices redistribute, so more of them stay in the meat when you slice it. The temperature also evens out a bit during resting — the center keeps cooking by a few degrees ("carryover cooking"), which is why many cooks take a steak off the heat slightly before it hits their target temperature. As a rule of thumb, rest steaks and chops for 5–10 minutes and large roasts for 15–30 minutes, loosely covered with foil.
S: Resting lets the juices redistribute and the temperature even out, so the meat stays juicier when you slice it.
%%
Q: How do I make a basic vinaigrette?
Q: What's a simple salad dressing I can make at home?
A: The classic ratio is 3 parts oil to 1 part acid. For a small jar: 3 tablespoons of olive oil, 1 tablespoon of vinegar or lemon juice, ½ teaspoon of Dijon mustard, a pinch of salt, and a grind of pepper. Put everything in a jar, close the lid, and shake hard for 10 seconds. The mustard helps it emulsify so it doesn't separate right away. Taste it on a leaf of lettuce and adjust — more acid if it's flat, more oil if it's too sharp, a little honey if you want it rounder.
S: Shake 3 parts oil with 1 part vinegar, plus a little mustard, salt and pepper.
%%
Q: How long do I boil an egg for a runny yolk?
A: Lower the egg straight from the fridge into already-boiling water and cook it for 6 minutes, then move it to cold water for a minute. That gives you a set white and a jammy, runny yolk. For a fully liquid yolk go 5 minutes; for firm but still bright yellow, 8 minutes; for classic hard-boiled, 10–11 minutes.
S: Six minutes in boiling water, then a quick cold-water bath.
%%
Q: My bread dough isn't rising. What could be wrong?
A: There are a few usual suspects:

1. **The yeast is dead.** Yeast past its expiry date, or yeast that met water hotter than about 50 °C, won't work. Test it: stir a teaspoon into warm water with a pinch of sugar. If it isn't foamy after 10 minutes, buy new yeast.
2. **The room is cold.** Dough rises slowly below about 20 °C. Try putting it in the oven with only the light on, or next to (not on) a radiator.
3. **Too much salt touching the yeast.** Mix the salt into the flour first rather than dumping it right on the yeast.
4. **It just needs more time.** Recipes often say "until doubled, about 1 hour", but whole-wheat doughs and cool kitchens can take two or three hours.

If the dough rises a little but not much, patience is usually the answer. If nothing at all happens after two hours in a warm spot, it's almost certainly the yeast.
S: Most often the yeast is dead or the kitchen is too cold; test the yeast in warm sugar water and give the dough a warmer spot and more time.
F: How can I tell when it has risen enough?
FA: Use the poke test. Flour a finger and press it about a centimeter into the dough. If the dent springs back immediately, it needs more time. If it springs back slowly and leaves a slight dent, it's ready. If it doesn't spring back at all and the dough sighs or deflates, it's over-proofed — you can usually still bake it, but the loaf will be flatter.
%%
Q: What's the difference between baking soda and baking powder?
A: Both make baked goods rise by releasing carbon dioxide, but they work differently. Baking soda is pure sodium bicarbonate; it needs an acid in the recipe (buttermilk, yogurt, lemon juice, brown sugar, cocoa) to react. Baking powder is baking soda that already has a dry acid mixed in, so it only needs moisture and heat. That's why a recipe with buttermilk often uses soda, while a plain-milk recipe uses powder. Baking soda is also about three to four times stronger, so you can't swap them one-for-one.
S: Baking soda needs an acid in the recipe to work; baking powder already contains its own acid.
F: Can I substitute one for the other in a pinch?
FA: Sort of. If you're out of baking powder, you can mix ¼ teaspoon of baking soda with ½ teaspoon of cream of tartar to replace 1 teaspoon of baking powder. Going the other way is harder: to replace baking soda with powder you'd need about three times as much, which can leave a bitter, metallic taste. In that case it's usually better to pick a different recipe.
%%
Q: How do I keep fresh herbs from wilting so fast?
A: Treat soft herbs like a bouquet: trim the stems and stand parsley, cilantro, or mint in a glass with an inch of water, then loosely cover the leaves with a plastic bag and keep them in the fridge. Basil is the exception — it hates the cold, so keep it in water on the counter. Woody herbs like rosemary and thyme do best wrapped in a slightly damp paper towel inside a container in the fridge.
S: Stand soft herbs in water in the fridge, keep basil on the counter, and wrap woody herbs in a damp paper towel.
%%
Q: Can you give me a recipe for a quick tomato pasta sauce?
A: Here's a 20-minute sauce that beats most jarred ones:

- 3 tablespoons olive oil
- 3 cloves garlic, thinly sliced
- a pinch of chili flakes (optional)
- 1 can (400 g) of whole peeled tomatoes
- salt, and a few basil leaves

Warm the oil in a wide pan over medium-low heat and add the garlic. Cook it gently until it just starts to turn golden — about 2 minutes; don't let it brown. Add the chili flakes, then the tomatoes with their juice, crushing them with a spoon or your hands. Add a good pinch of salt and simmer for 15 minutes, stirring now and then, until it thickens and the oil starts to separate at the edges. Tear in the basil at the end. Toss with pasta and a splash of the pasta water so the sauce clings.
S: Gently cook sliced garlic in olive oil, add a can of crushed whole tomatoes and salt, simmer 15 minutes, and finish with basil.
F: Why add the pasta water?
FA: Pasta water is salty and full of starch that leached out of the noodles. A few spoonfuls help the sauce emulsify with the oil and coat the pasta in a glossy layer instead of sliding off and pooling at the bottom of the bowl.
%%
Q: Is it safe to put hot food straight into the fridge?
A: Yes, and it's actually safer than leaving it out to cool for hours. Modern fridges can handle it. The main thing is to cool large amounts quickly: split a big pot of soup into shallow containers so the center doesn't stay warm for a long time. Food safety guidelines generally say to get cooked food into the fridge within two hours.
S: Yes — just divide big batches into shallow containers so they cool quickly.
F: Why?
FA: Because bacteria multiply fastest in the "danger zone" between about 5 °C and 60 °C. A big pot of stew left on the stove can sit in that range for hours as it slowly cools, and a deep container in the fridge cools just as slowly in the middle. Shallow containers get the food through that range quickly, which keeps bacterial growth low.
%%
Q: What is a roux and how do I make one?
A: A roux is equal parts fat and flour cooked together and used to thicken sauces, soups, and gravies. Melt 2 tablespoons of butter in a pan over medium heat, whisk in 2 tablespoons of flour, and keep stirring. After 1–2 minutes you have a "white" roux that tastes of butter rather than raw flour — that's the base for béchamel and cheese sauce. Cook it longer and it turns blond, then peanut-butter colored, then deep brown; darker roux has more flavor (it's the backbone of gumbo) but less thickening power. To use it, slowly whisk in warm liquid, a little at a time, to avoid lumps.
S: Equal parts butter and flour cooked together; whisk in liquid slowly to thicken a sauce.
%%
Q: How do I sharpen a kitchen knife at home?
A: The easiest reliable method for most people is a whetstone.

1. Soak the stone in water for 10 minutes if it's a water stone.
2. Place it on a damp towel so it doesn't slide, coarse side up.
3. Hold the knife at roughly 15–20° to the stone — about the height of two stacked coins under the spine.
4. Push the blade across the stone, edge first, sweeping from heel to tip, about 10 times. Then do the other side.
5. Feel for a tiny burr along the edge; once you have one along the whole length, switch to the fine side and repeat with lighter pressure.
6. Finish with a few alternating strokes and wipe the blade clean.

Between sharpenings, a honing steel keeps the edge aligned. It doesn't remove metal; it just straightens the edge, so use it every few uses.
S: Use a whetstone at about a 15–20° angle, coarse side until you raise a burr, then the fine side; hone between sharpenings.
%%
Q: What's a good way to use up overripe bananas?
A: Banana bread is the classic, but you have options. Peel and freeze them in chunks for smoothies. Mash them into pancake batter. Blend frozen banana alone until creamy for a one-ingredient "ice cream." Or make banana oat cookies: mash two bananas with a cup of rolled oats, add a handful of chocolate chips, and bake spoonfuls at 180 °C for about 15 minutes.
%%
Q: How do I make a cup of pour-over coffee?
A: Heat water to just off the boil, around 93–96 °C. Put a paper filter in the dripper, rinse it with hot water, and discard that water. Add about 15 g of medium-fine ground coffee for a 250 ml cup. Pour just enough water to wet all the grounds and wait 30 seconds — this "bloom" lets gas escape. Then pour slowly in circles, keeping the water level steady, until you've added 250 g of water in total. The whole brew should take about 3 minutes. If it tastes bitter, grind a bit coarser; if it's sour or thin, grind finer.
S: Use about 15 g of coffee per 250 ml of water just off the boil, bloom for 30 seconds, then pour slowly over about 3 minutes.
F: What's the difference between that and a café espresso?
FA: Espresso forces hot water through very finely ground, tightly packed coffee at high pressure (around 9 bar) in about 25–30 seconds. The result is a small, concentrated shot with crema on top and a heavier body. Pour-over relies on gravity alone, uses a coarser grind and more water, and produces a lighter, clearer cup where it's easier to taste the subtle flavors of the beans.
%%
Q: How do I stop onions from making me cry?
A: Onions release a sulfur compound when their cells are cut, and it reacts with the moisture in your eyes. The most effective fixes are a very sharp knife (fewer crushed cells), chilling the onion in the fridge for 30 minutes beforehand (slows the reaction), and cutting near a running extractor fan. Leaving the root end on until last also helps, since that's where the compound is most concentrated.
S: Use a sharp knife, chill the onion first, and leave the root end until last.
%%
Q: Can I freeze cooked pasta?
A: Yes. Cook it a minute short of al dente, toss it with a little oil so it doesn't clump, and freeze it in portions in freezer bags for up to about two months. To reheat, drop it straight from frozen into boiling water for 30–60 seconds, or add it directly to a simmering sauce. Pasta baked in sauce, like lasagna, freezes even better.
%%
Q: What spices should a beginner keep in their kitchen?
A: A good starter set: black pepper (whole, in a grinder), chili flakes, ground cumin, smoked paprika, dried oregano, ground cinnamon, and a curry powder or garam masala. With those plus salt, garlic, and onions, you can cover Italian, Mexican-ish, Middle Eastern, and South Asian-inspired dishes, and bake simple desserts. Buy small jars — ground spices lose most of their punch after about a year.
%%
""")

BLOCKS.append(r"""
@@ travel
Q: What should I pack for a one-week trip with only a carry-on?
Q: Can you help me pack light for a week away?
A: A week fits comfortably in a carry-on if you plan outfits around a simple color palette so everything mixes and matches. A solid list:

- 2 pairs of bottoms (one can be the pair you wear on the plane)
- 4–5 tops
- 1 warm layer, like a sweater or fleece
- 1 light rain jacket
- 7 pairs of underwear and socks (or 4 and plan to wash once)
- 1 pair of comfortable walking shoes, worn on the plane, plus sandals or light shoes if you need them
- sleepwear
- toiletries in travel sizes, in a clear bag
- chargers, a power adapter, and any medication in your personal item

Roll your clothes rather than folding them, wear your bulkiest items while traveling, and plan on doing one small load of laundry mid-week. Packing cubes aren't essential, but they make living out of a bag much easier.
S: Pick a simple color palette, pack about 4–5 tops and 2 bottoms, wear your bulkiest items on the plane, and plan one laundry day.
F: What if the weather might be cold?
FA: Swap the sandals for a second pair of closed shoes, and layer instead of packing a heavy coat: a thermal base layer, a fleece or sweater, and a windproof, waterproof shell work together better than one bulky jacket and take less space. Add a hat, gloves, and a scarf — they're tiny but make a huge difference. Wear the warmest pieces on the plane.
%%
Q: How early should I get to the airport for an international flight?
A: A common rule is three hours before departure for international flights and two hours for domestic ones. You can cut that down if you've already checked in online, have no bags to drop, and know the airport is quick, but leave extra time during holidays, early-morning peaks, or at big hub airports where security lines can be unpredictable. Missing a flight costs far more than an hour of waiting at the gate.
S: About three hours for international flights, two for domestic.
F: Why so early? That seems like a lot.
FA: Because the steps before the gate add up and are hard to predict: bag drop queues, security, and for international flights, passport control and sometimes document checks at the counter. Bag drop often closes 45–60 minutes before departure and boarding starts 30–45 minutes before, so a single slow line can make you miss a cut-off. If everything goes smoothly you'll have some spare time, which is a much better problem to have.
%%
Q: How do I deal with jet lag?
A: A few things genuinely help:

1. Start shifting your sleep an hour a day toward the destination's time zone a few days before you leave.
2. On the flight, set your watch to the new time and try to sleep or stay awake accordingly.
3. When you arrive, get outside in daylight. Morning light helps when you've flown east; evening light helps after flying west. Light is the strongest signal for your body clock.
4. Avoid long naps on the first day. If you must nap, keep it under 30 minutes.
5. Go easy on alcohol and caffeine, and drink plenty of water.

Roughly, your body adjusts by about one time zone per day, so a six-hour shift can take most of a week to fully settle.
S: Shift your sleep before you go, get daylight at the right time after arriving, and avoid long naps on day one.
F: Does melatonin help?
FA: For many people, yes — particularly after flying east. A small dose (0.5 to 3 mg) taken around the local bedtime for a few nights can help your body clock shift faster. It's not a sleeping pill, so it works best combined with the light exposure advice. If you take other medications or have health conditions, check with a doctor or pharmacist first.
%%
Q: What's the best way to get around Tokyo as a tourist?
A: The train and subway network is the way to go. Get a rechargeable IC card (Suica or Pasmo) — you can add it to your phone's wallet on many phones — and just tap in and out; it works on almost all trains, subways, and buses, and even in convenience stores. Google Maps or a similar app gives accurate routes, including which exit to use. Avoid the rush hours (roughly 7:30–9:30 and 17:30–19:30) if you can, especially with luggage. Taxis are clean and safe but expensive, and most areas are very walkable once you're in the right neighborhood.
S: Use an IC card like Suica on the trains and subway, plan routes in a maps app, and avoid rush hour.
%%
Q: Is it rude not to tip in Europe?
A: Generally, no. In most of Europe, service is included in the price and staff are paid a proper wage, so tipping is a small extra rather than an obligation. Rounding up the bill or leaving 5–10% for good table service at a restaurant is appreciated in places like Germany, France, or Italy, but nobody expects American-style 18–20%. In cafés and bars, leaving the small change is plenty. Some countries, such as Italy, may add a "coperto" (cover charge) to the bill, which isn't a tip.
S: No — service is usually included; rounding up or leaving 5–10% for good service is a nice gesture, not an obligation.
%%
Q: How can I find cheap flights?
A: Some practical tactics that actually work:

- Be flexible by a few days; use the calendar or "whole month" view on a flight search site to see the cheapest dates.
- Compare nearby airports on both ends.
- Set price alerts for your route instead of checking manually every day.
- Book domestic flights around 1–3 months ahead and international ones 2–6 months ahead; very last-minute fares are rarely cheap.
- Check the airline's own site before booking through a third party — the price is often the same, and changes are easier.
- Watch out for budget airline fees: a cheap fare plus a checked bag and seat selection can end up costing more than a regular airline.

Clearing your cookies to get lower prices is mostly a myth; flexibility is the thing that saves the most money.
S: Be flexible with dates and airports, set price alerts, book a few months ahead, and count baggage fees before choosing a budget airline.
%%
Q: What should I do if I lose my passport abroad?
A: Stay calm — it's a common problem with a standard process.

1. Report the loss to the local police and get a written report; you'll often need it for the replacement and for insurance.
2. Contact your country's nearest embassy or consulate. They can issue an emergency travel document or a replacement passport.
3. Bring whatever identification you have: a copy or photo of your passport, a driver's license, passport photos (the consulate can tell you where to get them locally), and your travel itinerary.
4. Let your airline know if your departure date might change.

To make this easier in the future, keep a photo of your passport's photo page in your email or cloud storage, separate from the passport itself.
S: File a police report, then contact your embassy or consulate for an emergency travel document; a photo of your passport helps a lot.
%%
Q: What's a good three-day itinerary for Paris?
A: Here's a relaxed plan that covers the highlights without rushing:

**Day 1 — The classic center.** Start at Notre-Dame and the Île de la Cité, walk across to the Latin Quarter for lunch, then spend the afternoon at the Louvre (book a timed ticket in advance and pick two or three wings rather than trying to see everything). End with a sunset walk along the Seine.

**Day 2 — Art and views.** Morning at the Musée d'Orsay, then cross the river and stroll through the Tuileries to Place de la Concorde and up the Champs-Élysées to the Arc de Triomphe — you can climb it for a great view. In the evening, head to the Eiffel Tower; seeing it sparkle on the hour after dark is worth it.

**Day 3 — Neighborhoods.** Spend the morning in Montmartre: Sacré-Cœur, the little streets behind it, and a café crème in a square. In the afternoon, explore Le Marais for shops, falafel on Rue des Rosiers, and the Place des Vosges.

Get a metro pass or just use contactless payment at the gates, wear comfortable shoes, and leave some time for simply sitting at a café terrace and people-watching — that's half the point of Paris.
S: Day 1: Notre-Dame, Latin Quarter, Louvre. Day 2: Orsay, Tuileries, Arc de Triomphe, Eiffel Tower at night. Day 3: Montmartre and Le Marais.
F: Which day would be best for a rainy forecast?
FA: Swap in Day 2 if it rains — the Musée d'Orsay takes up most of the morning, and you could replace the outdoor walk with a second museum such as the Orangerie (Monet's water lilies) or the covered passages near the Grands Boulevards, like Galerie Vivienne, which are lovely in wet weather. Save Montmartre for a dry day; the views and the streets are the whole point.
%%
Q: Do I need travel insurance?
A: It's not legally required for most trips, but it's often worth it, especially for international travel. The most valuable part is medical coverage: your home health insurance may not cover you abroad, and an emergency hospital stay or medical evacuation can cost tens of thousands. Trip cancellation coverage is useful if you've prepaid a lot of non-refundable bookings. Check what your credit card already covers before buying a separate policy, and read the exclusions — pre-existing conditions and risky activities like skiing are often excluded unless you add them.
S: Not required, but worth it mainly for medical coverage abroad; check what your credit card already includes.
%%
Q: How do I avoid getting sick from food when traveling?
A: Eat at busy places where food turns over quickly, and favor dishes that are cooked hot and served hot. Be more careful with raw salads, pre-cut fruit, and buffet food that has been sitting out. In places where tap water isn't safe to drink, use bottled or filtered water, including for brushing teeth, and skip ice unless you know it's made from purified water. Wash or sanitize your hands before eating. And pack oral rehydration salts — if you do get an upset stomach, staying hydrated is the most important thing.
S: Choose busy places and hot, freshly cooked food, be careful with water and ice, and carry rehydration salts.
%%
Q: I'm going to Iceland in winter. What should I know?
A: A few key things. Daylight is short — in December you get only about four or five hours — so plan driving and sightseeing around it. Weather changes fast; check the road conditions and weather sites every morning, and don't hesitate to change plans. If you rent a car, get one with winter tires and consider four-wheel drive, and never stop on the road to take photos. Dress in layers with waterproof outer gear; temperatures are often around 0 °C, but wind makes it feel much colder. The upside: good chances of seeing the northern lights on clear nights, and hot springs feel amazing when it's freezing outside.
S: Expect short days and fast-changing weather; check road conditions daily, dress in waterproof layers, and look for the northern lights on clear nights.
%%
Q: How do I say "thank you" in a few common languages?
A: Here are some useful ones: French "merci", Spanish "gracias", German "danke", Italian "grazie", Portuguese "obrigado" (or "obrigada" if you're a woman), Japanese "arigatō", Mandarin "xièxie", Turkish "teşekkürler", and Swedish "tack". Learning this one word for wherever you're going goes a surprisingly long way.
%%
""")

BLOCKS.append(r"""
@@ programming
Q: How do I reverse a string in Python?
Q: What's the easiest way to reverse a string in Python?
A: Use slicing with a step of -1:

```python
text = "hello"
reversed_text = text[::-1]
print(reversed_text)  # olleh
```

The slice `[::-1]` means "start at the end, go to the beginning, one step backwards." If you prefer something more explicit, `"".join(reversed(text))` does the same thing.
S: Use `text[::-1]`.
F: Does that work for lists too?
FA: Yes. Slicing works on any sequence, so `my_list[::-1]` returns a new reversed list. If you want to reverse a list in place without making a copy, use `my_list.reverse()`, which modifies the list and returns `None`.
%%
Q: How can I read a file line by line in Python?
A: Open the file in a `with` block and iterate over it directly. Python reads one line at a time, so this works even for huge files:

```python
with open("data.txt", encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n")
        print(line)
```

The `with` statement closes the file automatically, even if an error happens inside the loop. Each `line` includes its trailing newline, which is why the example strips it.
S: Use `with open(path) as f:` and loop `for line in f:`; strip the trailing newline from each line.
F: How would I count the lines instead of printing them?
FA: You can use a generator expression with `sum`, which still reads the file lazily:

```python
with open("data.txt", encoding="utf-8") as f:
    line_count = sum(1 for _ in f)
print(line_count)
```
%%
Q: What's the difference between a list and a tuple in Python?
A: Both are ordered sequences, but lists are mutable and tuples are immutable. You can append to, remove from, or change elements of a list; once a tuple is created, it can't change. Because of that, tuples can be used as dictionary keys and set members (as long as their contents are hashable), while lists cannot. By convention, lists are used for collections of similar items whose length may vary ("a list of users"), while tuples are used for fixed-size records where each position has a meaning, like `(latitude, longitude)`. Tuples are also slightly faster and use a bit less memory, but that's rarely the deciding factor.
S: Lists are mutable, tuples are immutable; use tuples for fixed records and as dictionary keys, lists for collections that change.
F: Why can't a list be a dictionary key?
FA: Dictionary keys must be hashable: their hash value has to stay the same for as long as they're in the dictionary. A list can change after you insert it, which would change its hash and leave it filed under the wrong bucket, so the dictionary could never find it again. Python avoids that problem by simply making lists unhashable.
%%
Q: How do I find the largest files in a directory using bash?
Q: What's a shell command to show the biggest files in a folder?
A: Combine `du` with `sort` and `head`:

```bash
du -ah /path/to/dir | sort -rh | head -n 10
```

`du -ah` lists the size of every file and subdirectory in human-readable units, `sort -rh` sorts those human-readable sizes from largest to smallest, and `head -n 10` keeps the top ten. If you only want files (not directories), use `find`:

```bash
find /path/to/dir -type f -printf '%s\t%p\n' | sort -rn | head -n 10
```

That prints sizes in bytes followed by the path.
S: Run `du -ah DIR | sort -rh | head -n 10`.
%%
Q: What does `if __name__ == "__main__":` do in Python?
A: Every Python module has a `__name__` variable. When you run a file directly (`python script.py`), Python sets `__name__` to `"__main__"`. When the file is imported by another module, `__name__` is set to the module's name instead. So the block

```python
def main():
    print("Running as a script")

if __name__ == "__main__":
    main()
```

runs `main()` only when the file is executed directly, not when it's imported. This lets the same file work both as a reusable module and as a command-line script.
S: It runs the code inside only when the file is executed directly, not when it's imported.
%%
Q: How do I remove duplicates from a list in Python while keeping the order?
A: Use `dict.fromkeys`, since dictionaries preserve insertion order (Python 3.7+):

```python
items = [3, 1, 3, 2, 1]
unique = list(dict.fromkeys(items))
print(unique)  # [3, 1, 2]
```

`list(set(items))` also removes duplicates, but it does not keep the original order.
S: `list(dict.fromkeys(items))`.
%%
Q: Can you explain what a Python list comprehension is?
A: A list comprehension is a compact way to build a list from another iterable. Instead of writing

```python
squares = []
for n in range(10):
    if n % 2 == 0:
        squares.append(n * n)
```

you can write

```python
squares = [n * n for n in range(10) if n % 2 == 0]
```

Read it left to right as "n squared, for each n in range(10), if n is even." The result is `[0, 4, 16, 36, 64]`. Comprehensions are usually faster and clearer for simple transformations. If the logic needs several nested conditions or side effects, a regular loop is more readable.
S: It's a one-line way to build a list: `[expr for item in iterable if condition]`.
F: Are there dictionary comprehensions too?
FA: Yes, with curly braces and a key–value pair:

```python
words = ["apple", "kiwi", "banana"]
lengths = {w: len(w) for w in words}
# {'apple': 5, 'kiwi': 4, 'banana': 6}
```

There are set comprehensions too (`{x % 3 for x in range(10)}`), and using parentheses gives you a lazy generator expression.
%%
Q: How do I undo my last git commit?
A: It depends on whether you want to keep the changes and whether you've pushed.

- Keep the changes, just undo the commit (not yet pushed):
  ```bash
  git reset --soft HEAD~1
  ```
  Your files stay as they are and the changes are staged again.
- Throw the commit and its changes away entirely (not yet pushed):
  ```bash
  git reset --hard HEAD~1
  ```
  Careful: this deletes uncommitted work too.
- Already pushed to a shared branch: don't rewrite history; create a new commit that reverses it:
  ```bash
  git revert HEAD
  ```

If you just want to fix the commit message or add a forgotten file, `git commit --amend` is the simplest option.
S: Use `git reset --soft HEAD~1` to undo but keep the changes, or `git revert HEAD` if you already pushed.
%%
Q: What is a virtual environment in Python and why should I use one?
A: A virtual environment is an isolated folder containing its own Python interpreter and its own installed packages. Without one, every project on your machine shares the same global packages, so upgrading a library for one project can break another. Creating one is quick:

```bash
python3 -m venv .venv
source .venv/bin/activate      # on Windows: .venv\Scripts\activate
pip install requests
```

While it's activated, `python` and `pip` refer to the environment's copies. Run `deactivate` to leave it. Add `.venv/` to your `.gitignore` and record your dependencies in a `requirements.txt` or `pyproject.toml` instead.
S: It's an isolated set of installed packages per project; create it with `python3 -m venv .venv` and activate it before installing anything.
%%
Q: Write a Python function that checks whether a number is prime.
A: Here's a straightforward version that only tests divisors up to the square root:

```python
def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True

print([x for x in range(30) if is_prime(x)])
# [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
```

It handles small numbers and even numbers first, then checks odd divisors only. If n had a factor larger than its square root, it would also have one smaller than the square root, so there's no need to look further.
S: Check divisibility by 2, then by odd numbers up to √n.
F: Why does it only need to go up to the square root?
FA: If n = a × b and both a and b were greater than √n, their product would be greater than n, which is impossible. So at least one factor of any composite number is less than or equal to √n. If we've found no divisor by the time d × d exceeds n, there isn't one.
%%
Q: How do I make an HTTP GET request in Python?
A: The popular `requests` library makes it simple:

```python
import requests

response = requests.get("https://api.example.com/items", params={"page": 1}, timeout=10)
response.raise_for_status()
data = response.json()
print(data)
```

`raise_for_status()` throws an error on 4xx and 5xx responses, and the `timeout` prevents your script from hanging forever. If you can't install packages, the standard library has `urllib.request`:

```python
import json
import urllib.request

with urllib.request.urlopen("https://api.example.com/items?page=1", timeout=10) as resp:
    data = json.load(resp)
```
S: Use `requests.get(url, timeout=10)` and `.json()`, or `urllib.request.urlopen` from the standard library.
%%
Q: What does `chmod +x` do?
A: It adds execute permission to a file, so you can run it directly as a program. For example, after `chmod +x deploy.sh` you can run it with `./deploy.sh` instead of `bash deploy.sh`. Scripts should also start with a shebang line such as `#!/usr/bin/env bash` so the system knows which interpreter to use.
%%
Q: Why is my Python code saying "IndentationError: unexpected indent"?
A: Python uses indentation to define blocks, so a line that's indented more than Python expects is a syntax error. Common causes: an accidental space at the start of a line, mixing tabs and spaces, or pasting code from somewhere with different indentation. Look at the line number in the error and the line just above it. The fix is to make the indentation consistent — configure your editor to insert 4 spaces when you press Tab and turn on "show whitespace" to spot stray tabs.
S: A line is indented more than Python expects — usually a stray space or mixed tabs and spaces.
%%
Q: How do I loop over files in a directory in bash?
A: A `for` loop with a glob is the simplest and handles spaces in filenames correctly as long as you quote the variable:

```bash
for f in /path/to/dir/*.txt; do
    echo "Processing $f"
    wc -l "$f"
done
```

If no files match, the loop runs once with the literal pattern; add `shopt -s nullglob` before the loop to avoid that. For recursive searches, use `find`:

```bash
find /path/to/dir -name '*.txt' -print0 | while IFS= read -r -d '' f; do
    echo "$f"
done
```
S: Use `for f in dir/*.txt; do ...; done`, and always quote "$f".
%%
Q: What's the difference between `==` and `is` in Python?
A: `==` checks whether two objects have equal values; `is` checks whether they are the very same object in memory. Two separate lists with the same contents are `==` but not `is`. Use `is` almost exclusively for comparing against singletons like `None` (`if x is None:`), and `==` for everything else. Small integers and short strings sometimes appear to work with `is` because Python caches them, but relying on that is a bug waiting to happen.
S: `==` compares values; `is` compares identity. Use `is` only for `None` and similar singletons.
%%
Q: How do I parse JSON in Python?
A: Use the built-in `json` module. `json.loads` parses a string, and `json.load` reads from a file:

```python
import json

text = '{"name": "Ada", "languages": ["Python", "C"]}'
person = json.loads(text)
print(person["languages"][0])  # Python

with open("config.json", encoding="utf-8") as f:
    config = json.load(f)
```

Going the other way, `json.dumps(obj, indent=2)` turns a Python object into a nicely formatted JSON string. By default non-ASCII characters are escaped; pass `ensure_ascii=False` to keep text like "naïve" or "Zürich" readable.
S: `json.loads` for strings, `json.load` for files; `json.dumps` to write.
%%
Q: Can you explain recursion with a simple example?
A: Recursion is when a function calls itself to solve a smaller version of the same problem. Every recursive function needs a base case (where it stops) and a recursive case (where it calls itself on something smaller). Factorial is the classic example:

```python
def factorial(n):
    if n <= 1:          # base case
        return 1
    return n * factorial(n - 1)   # recursive case

print(factorial(5))  # 120
```

`factorial(5)` becomes `5 * factorial(4)`, which becomes `5 * 4 * factorial(3)`, and so on until `factorial(1)` returns 1 and all the pending multiplications finish. Without the base case, the function would call itself forever — in Python you'd eventually hit a `RecursionError`.
S: A function that calls itself on a smaller input, with a base case that stops it; factorial is the classic example.
F: When should I avoid recursion?
FA: In Python, avoid it when the depth can get large — the default recursion limit is about 1000 calls, and each call has overhead. Problems that are naturally a simple loop (summing a list, counting down) are clearer and faster as loops. Recursion shines for naturally recursive structures like trees, nested directories, or divide-and-conquer algorithms such as merge sort, where the depth stays small.
%%
Q: How do I check which process is using a port on Linux?
A: Use `ss` or `lsof`:

```bash
sudo ss -ltnp | grep ':8080'
# or
sudo lsof -i :8080
```

Both show the process ID and name. If you need to stop it, use `kill <PID>`, and only fall back to `kill -9 <PID>` if it refuses to exit.
%%
Q: What is the difference between a process and a thread?
A: A process is a running program with its own memory space; a thread is a path of execution inside a process. Threads in the same process share memory, which makes communication between them cheap but also means they can step on each other's data, so you need locks or other synchronization. Processes are isolated: a crash in one doesn't corrupt another, but sharing data between them requires explicit mechanisms like pipes, sockets, or shared memory. In Python specifically, the global interpreter lock means threads help mostly with I/O-bound work (waiting on the network or disk), while CPU-bound work usually benefits more from multiple processes.
S: A process has its own memory; threads run inside a process and share its memory.
%%
Q: How do I write a simple unit test in Python?
A: With `pytest`, a test is just a function whose name starts with `test_` that uses plain `assert`:

```python
# calc.py
def add(a, b):
    return a + b

# test_calc.py
from calc import add

def test_add_positive():
    assert add(2, 3) == 5

def test_add_negative():
    assert add(-1, -1) == -2
```

Install it with `pip install pytest` and run `pytest` in the project folder; it discovers files named `test_*.py` automatically. When an assertion fails, pytest shows the values on both sides, which makes debugging easy.
S: Install pytest, write functions named `test_...` that use `assert`, and run `pytest`.
%%
Q: What does Big O notation mean?
A: Big O describes how the running time (or memory use) of an algorithm grows as the input gets bigger, ignoring constant factors. O(1) means the time doesn't depend on the input size — like looking up a key in a dictionary. O(n) means it grows in proportion to the input, like scanning a list once. O(n²) means doubling the input roughly quadruples the time, which is typical of nested loops over the same data. O(log n) grows very slowly, like binary search, which halves the remaining data at each step. The point isn't to predict exact seconds but to compare how approaches scale: for a million items, the difference between O(n log n) and O(n²) is the difference between a blink and hours.
S: It describes how an algorithm's cost grows with input size, ignoring constants — O(1), O(log n), O(n), O(n²), and so on.
%%
Q: How do I rename many files at once in bash, e.g. change .jpeg to .jpg?
A: A loop with parameter expansion does it safely:

```bash
for f in *.jpeg; do
    mv -- "$f" "${f%.jpeg}.jpg"
done
```

`${f%.jpeg}` removes the `.jpeg` suffix from the filename, and then `.jpg` is appended. The `--` protects against filenames that start with a dash. Try it first with `echo mv ...` instead of `mv` to preview what would happen.
%%
Q: What's a good way to format strings in Python?
A: f-strings (Python 3.6+) are the most readable option:

```python
name = "Ada"
total = 1234.5
print(f"Hello, {name}! Your total is {total:,.2f}.")
# Hello, Ada! Your total is 1,234.50.
```

Anything inside the braces is evaluated as an expression, and the part after the colon is a format spec: `:.2f` means two decimal places, `:,` adds thousands separators, `:>10` right-aligns in 10 characters. Since Python 3.8 you can also write `f"{total=}"` to print both the expression and its value, which is handy for debugging.
S: Use f-strings, like `f"{name} owes {total:.2f}"`.
%%
""")

BLOCKS.append(r"""
@@ math
Q: A train travels 180 km in 2 hours and 15 minutes. What is its average speed?
A: Convert the time to hours first: 2 hours 15 minutes = 2.25 hours. Then divide distance by time:

180 km ÷ 2.25 h = 80 km/h.

The train's average speed is 80 km/h.
S: 80 km/h.
F: How long would it take to go 300 km at that speed?
FA: Time = distance ÷ speed = 300 ÷ 80 = 3.75 hours, which is 3 hours and 45 minutes.
%%
Q: If a shirt costs $40 and is on sale for 25% off, how much do I pay?
Q: What's 25% off a $40 shirt?
A: 25% of $40 is 0.25 × 40 = $10. Subtract that from the original price: $40 − $10 = $30. You pay $30 (before any sales tax).

A quick shortcut: paying after a 25% discount means paying 75% of the price, so 0.75 × 40 = 30.
S: $30.
F: And if there's 8% sales tax on top?
FA: Tax is applied to the sale price: 8% of $30 is $2.40, so the total is $30 + $2.40 = $32.40. Equivalently, 30 × 1.08 = 32.40.
%%
Q: Sarah is 3 times as old as her son. In 12 years, she will be twice as old as him. How old are they now?
A: Let the son's age be s. Then Sarah is 3s.

In 12 years: Sarah will be 3s + 12 and her son will be s + 12. The problem says

3s + 12 = 2(s + 12)
3s + 12 = 2s + 24
s = 12

So the son is 12 and Sarah is 36. Check: in 12 years they'll be 24 and 48, and 48 is indeed twice 24.
S: The son is 12 and Sarah is 36.
%%
Q: How do I calculate the area of a circle with a diameter of 10 cm?
A: The area of a circle is π × r², where r is the radius. The radius is half the diameter, so r = 5 cm.

Area = π × 5² = 25π ≈ 78.54 cm².
S: About 78.54 cm² (25π).
%%
Q: I invest $1,000 at 5% interest compounded yearly. How much will I have after 3 years?
A: With yearly compounding, each year multiplies the balance by 1.05:

- After year 1: 1,000 × 1.05 = $1,050.00
- After year 2: 1,050 × 1.05 = $1,102.50
- After year 3: 1,102.50 × 1.05 = $1,157.63 (rounded)

In formula form: A = P(1 + r)ⁿ = 1,000 × 1.05³ ≈ $1,157.63. You earned $157.63 in interest, a bit more than the $150 that simple interest would give, because each year's interest also earns interest.
S: About $1,157.63.
F: What would it be with simple interest instead?
FA: Simple interest only pays on the original $1,000: 5% of 1,000 is $50 per year, so after 3 years you'd have 1,000 + 3 × 50 = $1,150. The $7.63 difference is the "interest on interest" from compounding.
%%
Q: What is 15% of 240?
A: 10% of 240 is 24, and 5% is half of that, 12. So 15% of 240 is 24 + 12 = 36.
%%
Q: A recipe for 4 people needs 300 g of flour. How much do I need for 6 people?
A: Scale the recipe by 6 ÷ 4 = 1.5. So 300 g × 1.5 = 450 g of flour. Multiply every other ingredient by 1.5 as well; for things like eggs, round sensibly (3 eggs becomes 4 or 5 depending on size).
S: 450 g.
%%
Q: Two pipes fill a tank. One alone takes 6 hours, the other alone takes 3 hours. How long do they take together?
A: Think in terms of how much of the tank each pipe fills per hour.

- Pipe A fills 1/6 of the tank per hour.
- Pipe B fills 1/3 = 2/6 of the tank per hour.

Together they fill 1/6 + 2/6 = 3/6 = 1/2 of the tank per hour. So the full tank takes 2 hours.
S: 2 hours.
F: Why can't I just average 6 and 3?
FA: Because the pipes are working at the same time, their rates add — the times don't. Averaging 6 and 3 gives 4.5 hours, which is longer than the faster pipe alone would take, and that can't be right: adding a second pipe must make it faster, not slower. Always convert to rates (tanks per hour), add them, then flip the result back into a time.
%%
Q: How many seconds are there in a week?
A: 60 seconds × 60 minutes × 24 hours × 7 days = 604,800 seconds.
%%
Q: Solve for x: 2x + 7 = 19.
A: Subtract 7 from both sides: 2x = 12. Then divide both sides by 2: x = 6. Check: 2 × 6 + 7 = 19. ✓
S: x = 6.
%%
Q: A rectangle has a perimeter of 30 m and its length is twice its width. What are its dimensions?
A: Let the width be w, so the length is 2w. The perimeter is 2 × (length + width):

2 × (2w + w) = 30
6w = 30
w = 5

The width is 5 m and the length is 10 m. Check: 2 × (10 + 5) = 30. ✓ Its area is 50 m².
S: 5 m by 10 m.
%%
Q: If I roll two dice, what's the probability that they add up to 7?
A: There are 6 × 6 = 36 equally likely outcomes. The pairs that sum to 7 are (1,6), (2,5), (3,4), (4,3), (5,2), and (6,1) — six outcomes. So the probability is 6/36 = 1/6, about 16.7%. Seven is the most likely total with two dice.
S: 1/6, about 16.7%.
F: What about rolling a total of 12?
FA: Only one outcome works, (6,6), so the probability is 1/36 — about 2.8%. The totals 2 and 12 are the least likely because each can be made in just one way.
%%
Q: Convert 25 °C to Fahrenheit.
A: Use F = C × 9/5 + 32. So 25 × 9/5 = 45, and 45 + 32 = 77. 25 °C is 77 °F — a pleasant warm day.
%%
Q: My car uses 6.5 liters per 100 km. How much fuel do I need for a 420 km trip?
A: Fuel needed = 420 ÷ 100 × 6.5 = 4.2 × 6.5 = 27.3 liters. Plan on about 30 liters to allow for traffic, hills, or air conditioning.
S: About 27.3 liters.
%%
Q: What is the sum of the numbers from 1 to 100?
A: Pair the numbers from opposite ends: 1 + 100 = 101, 2 + 99 = 101, 3 + 98 = 101, and so on. There are 50 such pairs, so the sum is 50 × 101 = 5,050. The general formula is n(n + 1)/2; with n = 100 that's 100 × 101 / 2 = 5,050. There's a famous story that Gauss worked this out as a schoolboy in a few seconds.
S: 5,050, using n(n + 1)/2.
F: Why does the pairing trick work?
FA: Because as you move in from both ends, one number goes up by 1 while the other goes down by 1, so their sum stays the same: 101 every time. The 100 numbers form exactly 50 such pairs. If you write the sequence forwards and backwards and add them column by column, you get 100 columns each summing to 101 — that's twice the total — so the total is 100 × 101 ÷ 2.
%%
Q: A store sells pencils in packs of 12 for $3.60 or individually for $0.35. How much do I save buying a pack instead of 12 single pencils?
A: Twelve single pencils cost 12 × $0.35 = $4.20. The pack costs $3.60. You save $4.20 − $3.60 = $0.60. Per pencil, the pack works out to $3.60 ÷ 12 = $0.30, five cents cheaper each.
S: You save $0.60.
%%
Q: Can you explain what a median is and how it differs from the mean?
A: The mean is the ordinary average: add up all the values and divide by how many there are. The median is the middle value when the data is sorted. For the numbers 2, 3, 3, 5, 37, the mean is 50 ÷ 5 = 10, but the median is 3. Notice how the single large value, 37, drags the mean up, while the median barely cares. That's why reports on things like household income or house prices often use the median: a few extremely high values would make the mean misleading. With an even number of values, the median is the average of the two middle ones.
S: The mean is the sum divided by the count; the median is the middle sorted value, which is less affected by outliers.
%%
""")

BLOCKS.append(r"""
@@ history
Q: Why did the Roman Empire fall?
Q: What caused the fall of the Western Roman Empire?
A: Historians don't point to a single cause; the Western Roman Empire declined over a couple of centuries through a mix of pressures that fed on each other.

**Political instability.** In the third century alone there were dozens of emperors, many of them murdered or overthrown by their own armies. Constant civil wars drained money and attention.

**Economic strain.** Defending enormous frontiers was expensive. Heavy taxation, debased coinage, and inflation weakened the economy, and trade suffered as roads and cities became less secure.

**Military pressure.** Groups such as the Goths, Vandals, and Huns pushed into Roman territory. Rome increasingly relied on hiring these groups as soldiers, and their leaders gained real power inside the empire.

**Division of the empire.** After the empire was split into eastern and western halves, the richer, more urban East (with its capital at Constantinople) was better able to defend itself, while the West struggled.

The traditional end date is 476 CE, when the Germanic leader Odoacer deposed the last western emperor, Romulus Augustulus. But the Eastern Roman Empire — what we call the Byzantine Empire — lasted nearly another thousand years, until the Ottomans took Constantinople in 1453.
S: A combination of political instability, economic strain, military pressure from outside groups, and the division into East and West; the West ended in 476 CE, while the East lasted until 1453.
F: What's the Byzantine Empire, then?
FA: It's the name modern historians give to the eastern half of the Roman Empire after the West fell. Its people called themselves Romans, and its capital was Constantinople (today's Istanbul). Over time it became Greek-speaking and Orthodox Christian, preserved a great deal of classical literature and Roman law, and remained a major power in the eastern Mediterranean for centuries until the Ottoman conquest in 1453.
%%
Q: What was the Industrial Revolution?
A: The Industrial Revolution was the shift from hand production to machine production that began in Britain in the late 1700s and spread to Europe, North America, and beyond during the 1800s. Key developments included mechanized textile spinning and weaving, improved steam engines (notably James Watt's), cheaper iron and later steel, and railways. Work moved from homes and small workshops into factories, and people moved from the countryside into fast-growing cities. It brought enormous increases in productivity and, eventually, living standards, but also harsh working conditions, child labor, crowded and polluted cities, and new social movements such as trade unions.
S: The move from hand production to machines and factories, starting in late-1700s Britain, which transformed work, cities and living standards.
F: Why did it start in Britain?
FA: Several factors came together there. Britain had plentiful coal and iron ore close to each other, a large colonial trading network providing raw materials and markets, relatively stable institutions and property rights, a banking system able to finance new ventures, and high wages combined with cheap energy, which made labor-saving machines worth investing in. An agricultural revolution had also freed up workers from farming.
%%
Q: Who was Marie Curie?
A: Marie Curie (1867–1934) was a Polish-born physicist and chemist who worked in France. With her husband Pierre, she discovered the elements polonium (named after Poland) and radium, and she did pioneering research on radioactivity — a term she helped popularize. She was the first woman to win a Nobel Prize, the first person to win two, and still the only person to win Nobel Prizes in two different sciences: physics in 1903 and chemistry in 1911. During World War I she helped set up mobile X-ray units to treat wounded soldiers. Her long exposure to radiation likely contributed to her death from aplastic anemia.
S: A Polish-French scientist who discovered polonium and radium and won Nobel Prizes in both physics and chemistry.
%%
Q: When did the first humans land on the Moon?
A: On 20 July 1969, during NASA's Apollo 11 mission. Neil Armstrong and Buzz Aldrin landed in the lunar module Eagle while Michael Collins stayed in orbit in the command module. Armstrong stepped onto the surface a few hours later, saying, "That's one small step for [a] man, one giant leap for mankind." In total, twelve astronauts walked on the Moon during six Apollo missions between 1969 and 1972.
S: 20 July 1969, on Apollo 11, with Neil Armstrong and Buzz Aldrin.
%%
Q: What was the significance of the printing press?
A: Johannes Gutenberg's movable-type printing press, developed in Mainz around 1440, made it possible to produce books quickly and cheaply for the first time in Europe. Before, books were copied by hand and were rare and expensive. Within fifty years, millions of books had been printed. That spread of information helped fuel the Renaissance, allowed the ideas of the Protestant Reformation to travel fast, standardized languages and spelling, and laid the groundwork for the Scientific Revolution, as scholars could share and check each other's work. It's often compared to the internet for how much it changed the flow of information.
S: It made books cheap and plentiful, spreading ideas fast and helping drive the Renaissance, the Reformation and modern science.
%%
Q: What started World War I?
A: The immediate trigger was the assassination of Archduke Franz Ferdinand, heir to the Austro-Hungarian throne, in Sarajevo on 28 June 1914 by Gavrilo Princip, a Bosnian Serb nationalist. Austria-Hungary blamed Serbia and issued an ultimatum, then declared war. Because of a web of alliances, the conflict spread within weeks: Russia mobilized to support Serbia, Germany backed Austria-Hungary and declared war on Russia and France, and Germany's invasion of neutral Belgium brought Britain in. Deeper causes included militarism and an arms race, rival imperial ambitions, nationalism in the Balkans, and rigid military plans that made quick escalation almost automatic.
S: The assassination of Archduke Franz Ferdinand in 1914 set it off, and a system of alliances, militarism and nationalism turned a regional crisis into a world war.
%%
Q: Who built the pyramids of Giza?
A: They were built by the ancient Egyptians during the Old Kingdom, around 2600–2500 BCE, as tombs for the pharaohs Khufu, Khafre, and Menkaure. Despite the popular image of slaves, archaeological evidence — including workers' villages, bakeries, and tombs near the site — shows that the builders were mostly paid laborers and skilled craftsmen, organized in rotating crews and supported by a large state administration. The Great Pyramid of Khufu was the tallest human-made structure in the world for nearly 4,000 years.
S: Paid Egyptian workers and craftsmen, around 2600–2500 BCE, as tombs for pharaohs like Khufu.
%%
Q: What was the Renaissance?
A: The Renaissance ("rebirth" in French) was a period of European cultural, artistic, and intellectual renewal, roughly from the 14th to the 17th century, which began in Italian cities such as Florence. Scholars revived interest in the texts of ancient Greece and Rome, and a movement called humanism emphasized human potential, education, and observation of the world. Artists like Leonardo da Vinci, Michelangelo, and Raphael developed realistic perspective and anatomy; thinkers and scientists such as Copernicus and Galileo challenged older views of the universe. Wealthy patrons like the Medici family funded much of this work, and the printing press spread the new ideas across Europe.
S: A cultural "rebirth" in Europe from about the 14th to 17th centuries, starting in Italy, that revived classical learning and transformed art and science.
%%
Q: Why was the Magna Carta important?
A: The Magna Carta, sealed by King John of England in 1215 under pressure from rebellious barons, established the principle that the king was not above the law. It was mostly a practical peace treaty about feudal rights and was annulled within months, but it was reissued several times, and a few clauses — such as the promise that no free man would be imprisoned except by lawful judgment of his peers or the law of the land — became foundations of ideas like due process and trial by jury. Later generations, including the framers of the US Constitution, treated it as a symbol of limits on government power.
S: It established that the king was subject to the law, and became a symbol of due process and limited government.
%%
Q: How did the Cold War end?
A: The Cold War wound down in the late 1980s and ended with the collapse of the Soviet Union in 1991. Mikhail Gorbachev, who became Soviet leader in 1985, introduced reforms known as glasnost (openness) and perestroika (restructuring), and improved relations with the United States, including arms-control treaties. In 1989, revolutions swept through Eastern Europe, mostly peacefully, and the Berlin Wall fell in November of that year; Germany reunified in 1990. Economic troubles and rising nationalism within the Soviet republics then led to the dissolution of the USSR in December 1991.
S: Gorbachev's reforms, the peaceful revolutions of 1989 including the fall of the Berlin Wall, and the breakup of the Soviet Union in 1991.
%%
Q: What was the Silk Road?
A: The Silk Road wasn't a single road but a network of overland and sea trade routes linking China with Central Asia, India, the Middle East, Africa, and Europe, active from roughly the 2nd century BCE to the 15th century CE. Silk was a famous export, but goods like spices, paper, glass, horses, and precious metals also moved along it. Just as important were the ideas that traveled with traders: Buddhism spread from India into China, and technologies such as papermaking and gunpowder eventually reached the West. Diseases traveled too — the Black Death likely spread along these routes in the 14th century.
S: A network of trade routes linking China and Europe that carried goods, religions, technologies — and diseases.
%%
Q: Who was Cleopatra?
A: Cleopatra VII (69–30 BCE) was the last active ruler of the Ptolemaic Kingdom of Egypt, a dynasty of Greek-Macedonian origin founded after Alexander the Great. She was highly educated, reportedly spoke several languages, and was the first of her dynasty to learn Egyptian. She allied with Julius Caesar and later Mark Antony to protect Egypt's independence from Rome. After Octavian defeated Antony and Cleopatra at the Battle of Actium in 31 BCE, both took their own lives, and Egypt became a Roman province.
%%

@@ science
Q: Why is the sky blue?
Q: Can you explain why the sky looks blue during the day?
A: Sunlight contains all the colors of visible light. As it passes through the atmosphere, it bumps into gas molecules, mostly nitrogen and oxygen, which are much smaller than the light's wavelength. Those molecules scatter shorter wavelengths much more strongly than longer ones — this is called Rayleigh scattering. Blue light has a short wavelength, so it gets scattered all over the sky, and when you look in any direction away from the Sun, you see that scattered blue light. Violet is scattered even more, but the Sun emits less violet, and our eyes are less sensitive to it, so the sky looks blue rather than purple.
S: Air molecules scatter short-wavelength blue light much more than red light, so scattered blue light reaches your eyes from all over the sky.
F: Then why are sunsets red?
FA: At sunset, sunlight travels through much more atmosphere to reach you because it comes in at a low angle. Along that long path, most of the blue light gets scattered out sideways before it arrives, so the light that does reach your eyes directly is dominated by the longer wavelengths — orange and red. Dust and particles in the air can make sunsets even more vivid.
%%
Q: How do vaccines work?
A: Vaccines train your immune system to recognize a germ without you having to get sick first. They contain a harmless piece or version of the pathogen — for example, an inactivated virus, a weakened virus, a single protein from its surface, or instructions (like mRNA) that let your own cells briefly produce that protein. Your immune system reacts to it as if it were a real infection: it makes antibodies and, importantly, memory B and T cells. If you're later exposed to the real pathogen, those memory cells recognize it quickly and mount a strong response, often stopping the infection before it causes serious illness. Side effects like a sore arm or mild fever are signs of the immune system doing this training.
S: They show your immune system a harmless piece or version of a germ so it builds memory cells and can respond quickly to the real thing.
%%
Q: What is photosynthesis?
A: Photosynthesis is the process plants, algae, and some bacteria use to turn light energy into chemical energy. Using chlorophyll in their chloroplasts, they capture sunlight and use it to combine carbon dioxide from the air with water from the soil, producing glucose (a sugar) and releasing oxygen. The overall equation is 6CO₂ + 6H₂O + light → C₆H₁₂O₆ + 6O₂. The plant uses the glucose for energy and as a building block for growth. Almost all life on Earth depends on it, both for food and for the oxygen we breathe.
S: Plants use sunlight to turn carbon dioxide and water into sugar, releasing oxygen.
%%
Q: What's the difference between weather and climate?
A: Weather is what the atmosphere is doing right now or over the next few days: today's temperature, rain, wind. Climate is the long-term pattern of weather in a place, usually averaged over 30 years or more. A handy way to remember it: weather is your mood today, climate is your personality. One cold winter doesn't disprove climate change, just as one hot day doesn't prove it; climate is about trends across decades.
S: Weather is short-term conditions; climate is the long-term average pattern over decades.
%%
Q: How do black holes form?
A: Most black holes form when a very massive star — at least around 20 times the mass of our Sun — runs out of nuclear fuel. Without the outward pressure from fusion, its core collapses under its own gravity in a fraction of a second, often triggering a supernova explosion of the outer layers. If the remaining core is massive enough, no known force can stop the collapse, and it becomes a region where gravity is so strong that not even light can escape once it crosses the boundary called the event horizon. There are also supermassive black holes, millions to billions of times the Sun's mass, at the centers of most galaxies, including our own Milky Way; how they grew so large is still an active research question.
S: When a very massive star runs out of fuel, its core collapses under gravity into a region from which not even light can escape.
F: Could the Sun become a black hole?
FA: No. The Sun isn't nearly massive enough. In about five billion years it will swell into a red giant, shed its outer layers, and leave behind a white dwarf — a hot, Earth-sized core that slowly cools over billions of years.
%%
Q: Why do we have seasons?
A: Seasons happen because Earth's axis is tilted about 23.5° relative to its orbit around the Sun. As Earth orbits, the Northern Hemisphere is tilted toward the Sun for part of the year and away from it for another part. When your hemisphere is tilted toward the Sun, sunlight hits the ground more directly and days are longer, so it's summer; when it's tilted away, the light is more spread out and days are shorter, so it's winter. It's not because of Earth's distance from the Sun — in fact, Earth is closest to the Sun in early January, during the northern winter.
S: Earth's tilted axis makes each hemisphere get more direct sunlight and longer days for part of the year.
%%
Q: What is DNA?
A: DNA (deoxyribonucleic acid) is the molecule that carries the genetic instructions for building and running living things. It's shaped like a twisted ladder — the famous double helix. The "rungs" are pairs of four chemical bases: adenine (A) pairs with thymine (T), and cytosine (C) pairs with guanine (G). The order of those bases spells out genes, which cells read to make proteins. Because each strand determines the other, DNA can be copied accurately when cells divide. The human genome has about 3 billion base pairs, packed into 23 pairs of chromosomes in nearly every cell.
S: The double-helix molecule that stores genetic instructions as a sequence of four bases: A, T, C and G.
%%
Q: Why does ice float on water?
A: Most substances are denser as solids than as liquids, but water is unusual. When water freezes, hydrogen bonds lock the molecules into an open hexagonal crystal structure that takes up more space than liquid water, so ice is about 9% less dense and floats. This matters a lot for life: lakes freeze from the top down, and the ice layer insulates the water below, letting fish survive the winter.
S: Frozen water forms an open crystal structure that's less dense than liquid water.
F: What would happen if ice sank?
FA: Lakes and ponds would freeze from the bottom up. Each winter's ice would sink, out of reach of the sun's warmth, and much of it might never melt in summer. Many bodies of water in cold regions could end up frozen nearly solid, leaving little room for fish and other aquatic life to survive the winter. The floating ice layer acts like an insulating lid that keeps the water beneath it liquid.
%%
Q: How does a rainbow form?
A: A rainbow forms when sunlight enters raindrops, bends (refracts), reflects off the back of the drop, and bends again as it leaves. Different colors bend by slightly different amounts, so the white light spreads into a spectrum. Each color reaches your eye from drops at a particular angle — about 42° from the point directly opposite the Sun for red, a little less for violet — which is why a rainbow is a circular arc and why you only see one with the Sun behind you.
S: Sunlight bends and reflects inside raindrops, splitting into colors that reach your eye at slightly different angles.
%%
Q: What's the difference between a virus and a bacterium?
A: Bacteria are single-celled living organisms. They have their own metabolism, can reproduce on their own by dividing, and many are harmless or even helpful, like those in your gut. Viruses are much smaller and aren't cells at all: they're genetic material wrapped in a protein coat, and they can only reproduce by hijacking a host cell's machinery. That difference matters for treatment — antibiotics kill or block bacteria but do nothing against viruses, which is why they don't help with colds or flu.
S: Bacteria are living single cells that reproduce on their own; viruses are much smaller and need a host cell to reproduce, so antibiotics don't work on them.
%%
Q: How does the greenhouse effect work?
A: Sunlight passes through the atmosphere and warms Earth's surface. The warm surface then gives off energy as infrared radiation. Greenhouse gases — mainly water vapor, carbon dioxide, methane, and nitrous oxide — absorb some of that infrared radiation and re-emit it in all directions, including back toward the surface. This keeps the planet much warmer than it would otherwise be; without any greenhouse effect, Earth's average temperature would be around −18 °C instead of about 15 °C. The concern today is that burning fossil fuels and other human activities have increased the concentration of these gases, strengthening the effect and warming the climate.
S: Greenhouse gases absorb heat radiated by Earth's surface and send some back down, keeping the planet warmer; adding more of them increases the warming.
%%
Q: Why do cats purr?
A: Cats purr by rapidly twitching the muscles of their larynx, which makes the vocal cords vibrate as they breathe in and out, at roughly 25–150 vibrations per second. They purr when content, but also when stressed, injured, or giving birth, so it seems to be a general self-soothing and communication signal rather than purely a sign of happiness. Some researchers have suggested that the frequencies involved might even help with healing bones and tissues, though that idea isn't proven.
%%
Q: What is the speed of light?
A: In a vacuum, light travels at exactly 299,792,458 meters per second — roughly 300,000 km per second. That's fast enough to go around Earth about 7.5 times in one second. Light from the Sun takes about 8 minutes and 20 seconds to reach us, and light from the Moon about 1.3 seconds. It's exact because since 1983 the meter has been defined in terms of it.
S: About 300,000 km per second (exactly 299,792,458 m/s).
%%
Q: How do noise-cancelling headphones work?
A: Active noise-cancelling headphones have small microphones that continuously listen to the sound around you. A chip analyzes that sound and generates a new sound wave that's the mirror image of it — its peaks line up with the noise's troughs. When the two waves meet, they cancel each other out, a process called destructive interference. This works best for steady, low-frequency sounds like airplane engines or air conditioners. Sudden or high-pitched sounds, like voices or clattering dishes, are harder to predict, so the ear cushions' physical seal does most of the work against those.
S: Microphones pick up outside noise and the headphones play an inverted copy that cancels it out, mostly for steady low-pitched sounds.
%%
Q: Why does the Moon have phases?
A: The Moon doesn't make its own light; we see sunlight reflecting off it. Half of the Moon is always lit by the Sun, but as it orbits Earth over about 29.5 days, we see different portions of that lit half. When the Moon is between Earth and the Sun, the lit side faces away from us — a new moon. When Earth is between them, we see the whole lit side — a full moon. In between we see crescents, quarters, and gibbous shapes. It's not Earth's shadow that causes phases; that only happens during a lunar eclipse.
S: We see varying amounts of the Moon's sunlit half as it orbits Earth over about 29.5 days.
%%
""")

BLOCKS.append(r"""
@@ writing
Q: Can you help me write a polite email asking my manager for a day off next Friday?
Q: Write a short email requesting a day off.
A: Sure, here's a short, professional version you can adapt:

Subject: Time off request — Friday, [date]

Hi [Manager's name],

I'd like to request a day off on Friday, [date], for a personal matter. I'll make sure my current tasks are up to date before then, and [colleague's name] has agreed to cover anything urgent while I'm out.

Please let me know if that works, or if you'd like me to adjust anything.

Thanks,
[Your name]
S: A brief email that names the date, mentions coverage for your work, and asks for confirmation.
F: Can you make it a bit more casual? We're pretty informal at work.
FA: Of course:

Hey [Name],

Would it be okay if I took next Friday, [date], off? I'll wrap up what I'm working on before then, and [colleague] can jump in if anything urgent comes up.

Thanks!
[Your name]
%%
Q: What's the difference between "affect" and "effect"?
A: In most everyday use, "affect" is a verb and "effect" is a noun. The weather affects my mood; the weather has an effect on my mood. A simple memory trick: Affect is an Action, Effect is the End result. There are exceptions — "effect" can be a verb meaning "to bring about" ("to effect change"), and "affect" is a noun in psychology meaning displayed emotion — but you can ignore those most of the time.
S: "Affect" is usually the verb, "effect" usually the noun.
%%
Q: How can I make my writing more concise?
A: A few habits make a big difference:

1. **Cut filler words** like "very," "really," "just," "actually," and "basically."
2. **Prefer strong verbs** over verb-plus-noun phrases: "decide" instead of "make a decision," "consider" instead of "take into consideration."
3. **Use active voice** where you can: "The team fixed the bug" rather than "The bug was fixed by the team."
4. **Remove redundant pairs** such as "end result," "past history," or "each and every."
5. **Lead with the point.** Put your main idea in the first sentence, then support it.
6. **Read it aloud.** Anywhere you run out of breath or get bored is a candidate for trimming.

After a first draft, try to cut 20% of the words without losing meaning — it's almost always possible.
S: Cut filler, use strong verbs and active voice, lead with your main point, and aim to trim about 20% in revision.
F: Can you show me an example?
FA: Before: "In my opinion, I think that it would actually be a really good idea for us to take into consideration the possibility of moving the meeting to a later date."

After: "Let's consider moving the meeting."

The second version drops the hedging ("in my opinion, I think"), the filler ("actually," "really"), and replaces "take into consideration the possibility of" with the single verb "consider."
%%
Q: Can you write a short poem about autumn?
A: Here's one:

The maples loosen, leaf by leaf,
their summer held in red and gold;
the afternoons grow bright and brief,
the mornings smell of smoke and cold.

We gather apples, rake the lawn,
and watch the geese write southward lines —
the year is leaning toward the dawn
of longer nights and darker pines.
%%
Q: How do I write a good cover letter?
A: A strong cover letter is short — under one page — and specific to the job. A simple structure:

**Opening.** Name the role you're applying for and give one sentence on why you're a strong fit or why this company interests you. Skip "I am writing to apply for…" if you can open with something more engaging.

**Middle (one or two paragraphs).** Pick two or three requirements from the job posting and show, with concrete examples and numbers, how you've done that kind of work before. "I reduced monthly reporting time from three days to four hours by automating our data pipeline" beats "I am detail-oriented and efficient."

**Closing.** Restate your interest briefly, mention that your résumé is attached, and thank them for their time.

Address it to a specific person if you can find their name, match the tone of the company, and proofread carefully — typos in a cover letter are a common reason applications get set aside.
S: Keep it under a page, tailor it to the job, back up two or three key requirements with concrete examples, and proofread.
%%
Q: When should I use a semicolon?
A: Use a semicolon mainly to join two closely related independent clauses — each could stand alone as a sentence — without a conjunction: "I wanted to go for a run; it was pouring rain." It also appears before transitional words like "however" or "therefore" when they join clauses: "The tickets sold out; however, a few were released the next day." The other common use is separating items in a list when the items themselves contain commas: "We visited Lyon, France; Turin, Italy; and Geneva, Switzerland."
S: To join two closely related complete sentences, or to separate list items that contain commas.
%%
Q: Can you suggest a title for my blog post about learning to bake sourdough during a busy year?
A: Here are a few options with different tones:

1. "Slow Bread in a Fast Year"
2. "Starter, Stretch, Repeat: My Sourdough Year"
3. "What Sourdough Taught Me About Patience"
4. "Flour on My Keyboard: Baking Through a Busy Year"
5. "Rise Time: Learning Sourdough One Loaf at a Time"

If the post is more practical than personal, something like "Sourdough for Busy People: What Actually Worked for Me" will do better in search results.
%%
Q: Is it okay to start a sentence with "and" or "but"?
A: Yes. The "rule" against it is a schoolroom simplification, not a real grammar rule, and good writers have done it for centuries. Starting with "And" or "But" can add emphasis or make a transition feel natural. Just don't overdo it, and in very formal writing you might prefer "However" or "In addition."
F: Why do so many teachers say not to, then?
FA: Mostly to break a habit. Young writers often string sentences together with "And... And... But..." so teachers ban the words to push students toward more varied sentence structure. It's a useful training rule, but it got passed down as if it were a real grammar rule. Style guides such as the Chicago Manual of Style explicitly say it's fine.
%%
Q: How do I write a strong thesis statement?
A: A thesis statement is one or two sentences, usually at the end of your introduction, that states the main argument your essay will prove. A strong one is specific, arguable, and gives a sense of your reasons. Compare:

- Weak: "Social media has good and bad effects." (Too vague; nobody would disagree.)
- Stronger: "Although social media helps teenagers maintain friendships, its design rewards constant comparison, which measurably harms their self-esteem."

Test yours by asking: could a reasonable person disagree? Does it tell the reader what the rest of the essay will cover? If you can't argue against it, it's a fact, not a thesis.
S: Make it specific and arguable, and hint at your reasons; if nobody could disagree, it's not a thesis.
%%
Q: Can you proofread this sentence: "Their going to the store tomorrow, and there bringing snacks for everyone."
A: Corrected: "They're going to the store tomorrow, and they're bringing snacks for everyone."

Both "Their" and "there" should be "they're," the contraction of "they are." As a quick check, try replacing the word with "they are" — if the sentence still makes sense, "they're" is right. "Their" shows possession (their car), and "there" refers to a place (over there).
%%
Q: Write a two-sentence horror story.
A: I heard my mother calling me from the kitchen, so I started down the stairs. Halfway there, she pulled me into the closet and whispered, "I heard it too."
%%
Q: How do I write a good summary of an article?
A: Read the article once without taking notes to understand the overall point. Then reread it and identify the main claim and the two to four most important supporting points, ignoring examples and side details. Write the summary in your own words: start with the author, title, and main idea in one sentence, then briefly cover the supporting points in the order they appear. Keep your own opinions out of it and aim for about a quarter or less of the original length. Finally, check it against the article to make sure you haven't distorted anything.
S: Identify the main idea and a few key supporting points, and restate them briefly in your own words without adding your opinion.
%%

@@ everyday
Q: How do I get a coffee stain out of a white shirt?
A: Act fast if you can. Blot (don't rub) the stain with a clean cloth, then rinse it from the back with cold water to push the coffee out of the fibers. Rub a little liquid laundry detergent or dish soap into the spot, let it sit for 5–10 minutes, and rinse again. For an older stain, soak the shirt for 30 minutes in cool water with an oxygen-based stain remover. Wash as usual, and check that the stain is gone before putting it in the dryer — heat can set it permanently.
S: Blot, rinse from the back with cold water, work in some detergent, and avoid the dryer until the stain is gone.
%%
Q: What's a good morning routine to be more productive?
A: The best routine is one you'll actually stick to, but these elements help most people:

1. **Wake up at a consistent time**, even on weekends, so your body clock stays steady.
2. **Delay your phone** for the first 20–30 minutes so you start with your own priorities rather than other people's.
3. **Drink water and get some daylight** — open the curtains or step outside for a few minutes.
4. **Move a little**: a short walk, stretching, or a few minutes of exercise.
5. **Eat something with protein** if you're hungry in the mornings.
6. **Pick your top one to three tasks** for the day and, if possible, start the most important one before checking email.

Start with just one or two of these and add more once they feel automatic.
S: Wake at a consistent time, skip your phone at first, get water, light and movement, and start the day's most important task before email.
F: I'm not a morning person at all. Any advice?
FA: Then don't force a dramatic change. Move your wake-up time earlier by 15 minutes every few days rather than all at once, get bright light as soon as you're up, and keep the evening before consistent — a regular bedtime and less screen time in the last hour make mornings much easier. It's also fine to schedule your deep-focus work later in the day if that's when your energy peaks; the goal is productivity, not waking up at 5 a.m.
%%
Q: How often should I water my houseplants?
A: There's no universal schedule — it depends on the plant, the pot, the light, and the season. The most reliable method is to check the soil: push a finger about 2–3 cm into it, and water only when it feels dry at that depth. When you do water, water thoroughly until it drains from the bottom, then empty the saucer. Most houseplants need less water in winter. Overwatering kills far more houseplants than underwatering, and yellowing lower leaves plus soggy soil are the usual warning signs. Succulents and cacti prefer the soil to dry out completely between waterings.
S: Water when the top few centimeters of soil are dry, water thoroughly, and remember overwatering is the most common mistake.
%%
Q: How can I fall asleep faster?
A: Some evidence-based habits:

- Keep a consistent sleep and wake time, including weekends.
- Make the bedroom cool (around 18 °C), dark, and quiet.
- Dim the lights and put screens away for the last 30–60 minutes, or at least use night mode.
- Avoid caffeine after early afternoon and heavy meals or alcohol close to bedtime.
- If you can't sleep after about 20 minutes, get up and do something calm in low light until you feel sleepy, rather than lying there frustrated.
- Try slow breathing: inhale for 4 seconds, hold for 4, exhale for 6–8, and repeat.

If trouble sleeping lasts for weeks and affects your days, it's worth talking to a doctor; cognitive behavioral therapy for insomnia (CBT-I) is very effective.
S: Keep a regular schedule, a cool dark room, no screens or caffeine late, and get up if you can't sleep after 20 minutes.
%%
Q: How do I create a simple monthly budget?
A: Here's a straightforward way to start:

1. **Find your monthly take-home income** — what actually lands in your account after taxes.
2. **List fixed expenses**: rent or mortgage, utilities, insurance, loan payments, subscriptions.
3. **Estimate variable expenses** like groceries, transport, and eating out. Look at the last two or three months of bank statements for realistic numbers.
4. **Set savings as a line item**, not as whatever's left over. Even 5–10% is a good start.
5. **Compare totals.** If expenses plus savings exceed income, look first at the biggest flexible categories.
6. **Track it for a month** in a spreadsheet or app, then adjust.

A popular starting guideline is the 50/30/20 rule: about 50% for needs, 30% for wants, and 20% for savings and debt repayment. Treat it as a rough target rather than a strict rule.
S: List your take-home income, fixed and variable expenses, and a savings line; track it for a month and adjust. The 50/30/20 rule is a good rough guide.
F: What should I do first if I have credit card debt?
FA: Make at least the minimum payment on every card so you avoid fees, then put any extra money toward the card with the highest interest rate first (the "avalanche" method), since that saves the most in interest. Some people prefer paying off the smallest balance first (the "snowball" method) for the motivation of quick wins — either works if you stick with it. Meanwhile, try to keep a small emergency fund so a surprise expense doesn't go right back on the card.
%%
Q: What's the best way to clean a cast-iron pan?
A: While the pan is still warm, rinse it with hot water and scrub with a brush or a chain-mail scrubber. A little dish soap is fine — modern soap won't strip proper seasoning. For stuck-on food, simmer a bit of water in the pan for a minute, or scrub with coarse salt. Then dry it completely, ideally on the stove over low heat for a minute or two, and rub a very thin layer of oil over the cooking surface while it's warm. Avoid soaking it or putting it in the dishwasher, since that causes rust.
S: Scrub it while warm, dry it thoroughly on the stove, and rub on a thin layer of oil; never soak it.
%%
Q: How do I politely decline an invitation?
A: Keep it warm, brief, and honest, and don't feel you need a detailed excuse. For example: "Thank you so much for inviting me! Unfortunately I can't make it this time, but I hope it's a wonderful evening." If you'd genuinely like to see the person, add an alternative: "Could we grab coffee sometime next week instead?" Replying promptly is the most considerate part — it helps the host plan.
S: Thank them, say you can't make it without over-explaining, and suggest an alternative if you'd like.
%%
Q: What should I keep in a basic first aid kit?
A: A solid home kit includes:

- adhesive bandages in several sizes
- sterile gauze pads and medical tape
- an elastic bandage for sprains
- antiseptic wipes and antibiotic ointment
- tweezers and small scissors
- disposable gloves
- pain relievers such as paracetamol (acetaminophen) or ibuprofen
- antihistamines for allergic reactions
- a digital thermometer
- an instant cold pack
- any personal medications, plus a list of emergency numbers

Check it twice a year and replace anything expired or used up.
%%
Q: How do I jump-start a car?
A: You'll need jumper cables and a second car with a working battery.

1. Park the cars close together, turn both off, and set the parking brakes.
2. Connect one red clamp to the positive (+) terminal of the dead battery.
3. Connect the other red clamp to the positive (+) terminal of the good battery.
4. Connect one black clamp to the negative (−) terminal of the good battery.
5. Connect the last black clamp to an unpainted metal part of the dead car's engine block, away from the battery — not to the dead battery's negative terminal. This reduces the risk of sparks near the battery.
6. Start the working car and let it run for a few minutes, then try starting the dead car.
7. Once it starts, remove the clamps in reverse order, and drive for at least 20–30 minutes to recharge the battery.

If it won't start after a few tries, the battery may be beyond saving, or the problem may be something else, like the starter.
S: Red to dead +, red to good +, black to good −, last black to bare metal on the dead car; start the good car, then the dead one, and remove in reverse order.
%%
Q: How can I stop procrastinating?
A: Procrastination is usually about avoiding an unpleasant feeling — boredom, confusion, fear of doing it badly — not laziness. Some techniques that target that directly:

- **Make the first step tiny.** Not "write the report," but "open the document and write one heading." Starting is the hardest part.
- **Use a timer.** Work for 25 minutes, then take a 5-minute break (the Pomodoro technique). Knowing there's an end point makes it easier to begin.
- **Remove friction for the task and add friction for distractions**: close extra tabs, put your phone in another room.
- **Clarify the next action** when a task feels vague; confusion is a big trigger for avoidance.
- **Forgive yourself** for past procrastination — research suggests self-criticism makes people procrastinate more, not less.
S: Make the first step tiny, work in timed bursts, remove distractions, clarify vague tasks, and go easy on yourself.
%%
Q: What's a good gift for someone who says they don't want anything?
A: Go for things that get used up or are experiences rather than more stuff. Some ideas: a nice bottle of olive oil or good coffee, a box of treats from a local bakery, a favorite candle, a gift card to a restaurant they like, tickets to a concert or a show, a class they could take with you, or simply an offer of your time — cooking them dinner or helping with a project. A handwritten note saying why they matter to you is often the most appreciated gift of all.
%%
Q: How do I remove a splinter?
A: Wash your hands and the area with soap and water. If part of the splinter is sticking out, grab it with clean tweezers and pull it out gently at the same angle it went in. If it's just under the skin, sterilize a fine needle with rubbing alcohol, gently lift the skin over the end of the splinter, and then use the tweezers. Afterwards, wash the area again and cover it with a bandage. See a doctor if it's very deep, under a fingernail, or shows signs of infection such as increasing redness, warmth, or pus.
%%
""")

BLOCKS.append(r"""
@@ health
Q: How much water should I drink a day?
A: There's no single number that fits everyone. The often-quoted "8 glasses a day" is a reasonable rough guide, but total needs depend on your size, activity level, and climate, and a good share of your water comes from food, tea, coffee, and other drinks. For most healthy adults, drinking when you're thirsty and having pale yellow urine is a good sign you're getting enough. You need more when it's hot, when you exercise, or when you're ill with fever or vomiting.
S: Roughly 8 glasses is a fine guide, but drink to thirst and aim for pale yellow urine; you need more in heat or during exercise.
%%
Q: I want to start running. How should I begin?
Q: What's a good plan for a complete beginner who wants to start running?
A: Start slower than you think you need to. The most common beginner mistake is doing too much too soon and getting injured or discouraged.

A simple plan for the first few weeks, three times a week with rest days in between:

- **Week 1–2:** Walk 5 minutes to warm up, then alternate 1 minute of easy running with 2 minutes of walking, eight times.
- **Week 3–4:** Alternate 2 minutes running with 1 minute walking, seven times.
- **Week 5–6:** Alternate 5 minutes running with 1 minute walking, four times.

By week 8 or 9, most people can run 20–30 minutes without stopping. Run at a pace where you could still hold a conversation. Get a pair of running shoes that feel comfortable in the store, and don't increase your total weekly distance by more than about 10% per week. Mild muscle soreness is normal; sharp or lasting pain isn't — rest and get it checked.
S: Run three times a week using run/walk intervals, build up gradually over about eight weeks, keep a conversational pace, and don't increase weekly distance by more than 10%.
F: Should I stretch before running?
FA: Skip long static stretches (holding a stretch for 30 seconds) before running — they don't prevent injury and can slightly reduce performance. Instead, warm up dynamically: a few minutes of brisk walking or easy jogging, then leg swings, walking lunges, and high knees. Save static stretching for after the run, if you enjoy it.
%%
Q: Is it bad to sit all day?
A: Long uninterrupted sitting is linked to higher risks of heart disease, type 2 diabetes, and back pain, even for people who exercise. The good news is that breaking it up helps a lot. Aim to stand up and move for a couple of minutes every 30–60 minutes: walk to refill your water, take phone calls standing, or do a few stretches. A standing desk can help, but standing still all day isn't ideal either — the goal is frequent changes of position and movement.
S: Yes, long unbroken sitting is harmful, but standing up and moving for a couple of minutes every 30–60 minutes helps a lot.
%%
Q: What's a quick, healthy breakfast?
A: A few ideas that take under five minutes: Greek yogurt with berries and a handful of nuts; overnight oats made the evening before with oats, milk, chia seeds, and fruit; wholegrain toast with peanut butter and banana slices; or two scrambled eggs with spinach folded in. Including some protein and fiber tends to keep you full until lunch better than a sugary cereal or pastry.
%%
Q: How many hours of sleep do adults need?
A: Most adults need 7 to 9 hours per night. Some people do fine at the lower end and a few need more, but regularly getting under 7 hours is linked to poorer concentration, mood, immune function, and long-term health. Consistency matters too: keeping the same bedtime and wake-up time helps your sleep quality.
%%
Q: What's a simple strength workout I can do at home without equipment?
A: Try this circuit two or three times a week. Do each exercise for the listed reps, rest about a minute at the end, and repeat the whole circuit three times:

1. Squats — 15 reps
2. Push-ups — 8–12 reps (on your knees or against a table if needed)
3. Reverse lunges — 10 per leg
4. Glute bridges — 15 reps
5. Plank — 30 seconds
6. Superman holds (lying face down, lift arms and legs) — 10 reps

When it starts to feel easy, add reps, slow down the movements, or try harder versions like jump squats or decline push-ups. Good form matters more than speed.
S: Three rounds of squats, push-ups, lunges, glute bridges, planks and superman holds, two or three times a week.
%%

@@ misc
Q: How do I start learning a new language as an adult?
A: Adults can absolutely learn languages — you just learn a bit differently from children. A practical approach:

1. **Set a realistic goal**, like holding a 10-minute conversation in six months.
2. **Learn the most frequent words first.** The top 1,000 words cover a large share of everyday speech. Spaced-repetition flashcard apps are excellent for this.
3. **Listen every day**, even passively: podcasts for learners, music, shows with subtitles in the target language.
4. **Speak early**, even badly. Find a tutor or a language-exchange partner online; making mistakes out loud is how you improve.
5. **Learn grammar as you need it** rather than all up front.
6. **Be consistent.** Twenty minutes every day beats three hours on Sunday.

Expect plateaus — they're normal — and celebrate small wins, like understanding a song lyric or ordering a café au lait without switching to English.
S: Set a concrete goal, learn high-frequency words with spaced repetition, listen daily, speak early with a tutor or partner, and practice a little every day.
F: How long does it take to become fluent?
FA: It depends on the language, how close it is to ones you already know, and how much you practice. As a rough guide, the US Foreign Service Institute estimates around 600–750 class hours for an English speaker to reach professional working proficiency in languages like Spanish, French, or Italian, and around 2,200 hours for Japanese, Arabic, or Mandarin. With an hour a day, that's a couple of years for the easier languages. Conversational ability comes much sooner than that, often within a few months.
%%
Q: How do I take care of a new puppy?
A: The first weeks are mostly about routine, safety, and gentle training:

- **Set up a safe space** with a crate or pen, a bed, water, and chew toys, and puppy-proof the house (cables, shoes, toxic plants).
- **Feed a good-quality puppy food** on a schedule, usually three or four small meals a day for young puppies.
- **Start house training right away**: take the puppy outside after waking, after eating, after play, and every hour or two, and praise it enthusiastically when it goes outside.
- **Visit a vet** for vaccinations, deworming, and a check-up, and ask about microchipping.
- **Socialize carefully**: introduce new people, sounds, and surfaces in a calm, positive way; check with your vet about when it's safe to meet other dogs.
- **Teach basics with rewards**: name, sit, come, and settle, in short, fun sessions of a few minutes.

Expect accidents and chewed objects — patience and consistency matter more than anything.
S: Set up a safe space, feed on a schedule, start house training and vet visits immediately, socialize gently, and teach basic commands with rewards.
%%
Q: What vegetables are easiest to grow for a beginner?
A: Some very forgiving choices: radishes (ready in about four weeks), lettuce and other salad greens, zucchini (one plant produces a lot), bush beans, cherry tomatoes, and herbs like mint, parsley, and chives. Most of them need at least six hours of sun a day and regular watering. Start small — a couple of containers or one raised bed — so it stays fun rather than overwhelming.
%%
Q: What is the difference between a Roth IRA and a traditional IRA?
A: Both are US retirement accounts; the difference is when you pay tax. With a traditional IRA, contributions may be tax-deductible now, the money grows tax-deferred, and you pay income tax when you withdraw it in retirement. With a Roth IRA, you contribute money you've already paid tax on, but qualified withdrawals in retirement — including all the growth — are tax-free. Roughly speaking, a Roth makes more sense if you expect to be in a higher tax bracket in retirement than now, and a traditional IRA if you expect a lower one. Income limits and contribution limits apply, so check the current rules or talk to a financial advisor for your situation.
S: Traditional: tax break now, taxed on withdrawal. Roth: taxed now, tax-free withdrawals in retirement.
%%
Q: How does a credit score work?
A: A credit score is a number lenders use to estimate how likely you are to repay borrowed money. In the US, FICO scores range from 300 to 850. The main factors are roughly: payment history (about 35% — paying on time matters most), amounts owed and how much of your available credit you use (about 30%), the length of your credit history (15%), the mix of credit types (10%), and recent applications for new credit (10%). To improve it, pay every bill on time, keep card balances well below their limits (under 30% and ideally under 10%), and avoid opening many new accounts at once.
S: It estimates how likely you are to repay debt, based mostly on on-time payments and how much of your available credit you use.
F: Why does using less of my limit help?
FA: Because lenders see high utilization as a sign of financial strain. Someone using 90% of their available credit looks more likely to struggle with repayments than someone using 10%, even if both pay on time. Utilization is usually calculated from the balance on your statement, so paying the card down before the statement date, or asking for a higher limit without spending more, can lower it quickly. Unlike late payments, it has no long memory: once the balances fall, the score typically recovers within a month or two.
%%
Q: What's a good way to memorize things for an exam?
A: The two most effective techniques according to learning research are retrieval practice and spacing. Retrieval practice means testing yourself — flashcards, practice questions, or explaining a topic from memory — instead of rereading notes, which feels productive but builds little memory. Spacing means reviewing material over several days rather than cramming it all in one night; each time you nearly forget something and then recall it, the memory gets stronger. Mix different types of problems in one session, sleep well before the exam, and use simple mnemonics for lists you must memorize word for word.
S: Test yourself instead of rereading, and spread your reviews over several days.
%%
Q: How do I back up my phone's photos?
A: The easiest option is your phone's built-in cloud backup: iCloud Photos on an iPhone or Google Photos on Android. Turn it on in the settings, make sure you have enough cloud storage (the free tiers fill up fast), and let it upload over Wi-Fi. For a second copy, periodically transfer your photos to a computer or an external drive. A good rule is 3-2-1: three copies of your data, on two different types of storage, with one copy off-site (the cloud counts).
S: Turn on iCloud Photos or Google Photos, and keep a second copy on a computer or external drive.
%%
Q: How do I make a strong password that I can actually remember?
A: Use a passphrase: four or more random, unrelated words, such as "copper-lantern-oyster-gravel." Length matters more than complexity, and a random four- to six-word phrase is both strong and memorable. Don't reuse passwords across sites — if one site is breached, attackers will try the same password everywhere. The realistic way to have unique passwords for everything is a password manager, which means you only need to remember one strong passphrase. And turn on two-factor authentication for important accounts like email and banking.
S: Use a long passphrase of random words, never reuse passwords, use a password manager, and enable two-factor authentication.
%%
Q: What's the difference between a crocodile and an alligator?
A: The easiest way to tell is the snout: alligators have a wide, U-shaped snout, while crocodiles have a narrower, V-shaped one. When an alligator's mouth is closed, its upper jaw covers the lower teeth, but a crocodile's lower teeth stay visible in a toothy grin. Alligators live mainly in fresh water in the southeastern United States and China; crocodiles are found in many tropical regions and tolerate salt water better. Crocodiles also tend to be more aggressive.
S: Alligators have a wide U-shaped snout and hidden lower teeth; crocodiles have a narrow V-shaped snout with visible lower teeth.
%%
Q: Can you recommend some classic novels for someone who doesn't read much?
A: Start with classics that are short and gripping:

- *Of Mice and Men* by John Steinbeck — a short, powerful story you can read in an afternoon.
- *The Great Gatsby* by F. Scott Fitzgerald — glamorous, tragic, and under 200 pages.
- *Animal Farm* by George Orwell — a fable about power that reads quickly.
- *Frankenstein* by Mary Shelley — much stranger and more moving than the movies suggest.
- *The Strange Case of Dr Jekyll and Mr Hyde* by Robert Louis Stevenson — a short, suspenseful mystery.
- *Pride and Prejudice* by Jane Austen — longer, but witty and very readable once you get into the rhythm.

Audiobooks are a great option too, especially for older language that can feel slow on the page.
%%
Q: What's the best way to prepare for a job interview?
A: Focus on preparation you can actually control:

1. **Research the company**: what it does, recent news, and why the role exists.
2. **Study the job description** and match each key requirement with a specific example from your experience.
3. **Prepare stories using the STAR format** — Situation, Task, Action, Result — for common questions like "Tell me about a challenge you overcame."
4. **Practice out loud**, ideally with a friend, including "Tell me about yourself" in about 90 seconds.
5. **Prepare two or three thoughtful questions** for them, such as what success looks like in the first six months.
6. **Handle logistics the day before**: route or video link, outfit, copies of your résumé.

Afterwards, send a short thank-you note within a day.
S: Research the company, map your experience to the job requirements with STAR stories, practice out loud, prepare questions, and sort logistics the day before.
%%
""")

BLOCKS.append(r"""
@@ programming
Q: Can you explain classes in Python with a simple example?
Q: I don't really understand object-oriented programming in Python. How do classes work?
A: A class is a blueprint for creating objects that bundle data (attributes) together with the functions that work on that data (methods). Here's a small example:

```python
class BankAccount:
    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance

    def deposit(self, amount):
        if amount <= 0:
            raise ValueError("Deposit must be positive")
        self.balance += amount

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError("Insufficient funds")
        self.balance -= amount

    def __repr__(self):
        return f"BankAccount(owner={self.owner!r}, balance={self.balance})"


acct = BankAccount("Ada", 100)
acct.deposit(50)
acct.withdraw(30)
print(acct)  # BankAccount(owner='Ada', balance=120)
```

A few key ideas:

- **`__init__`** runs when you create a new object with `BankAccount(...)`. It sets up the object's starting state.
- **`self`** is the specific object the method is being called on. When you write `acct.deposit(50)`, Python calls `BankAccount.deposit(acct, 50)` behind the scenes, so `self` is `acct`.
- **Attributes** like `self.balance` belong to each object separately. If you create a second account, it has its own balance.
- **Methods** like `deposit` and `withdraw` keep the rules about how the data can change in one place. That's the main benefit of classes: code that uses an account doesn't need to know the rules; it just calls the methods.
- **Special methods** like `__repr__` let your objects work nicely with built-in features — here, printing.

Classes can also inherit from other classes. For example, `class SavingsAccount(BankAccount):` would get all of `BankAccount`'s methods, and you could add an `add_interest` method or override `withdraw` with different rules.

A good rule of thumb for when to use a class: when you have some data and several functions that all operate on that same data. If you just have a function or two, plain functions are often simpler.
S: A class bundles data and the methods that operate on it; `__init__` sets up each object, and `self` refers to the object a method is called on.
F: What is inheritance used for, in practice?
FA: Inheritance lets a new class reuse and extend an existing one. A common real-world use is when several kinds of objects share most of their behavior: a `SavingsAccount` and a `CheckingAccount` might both inherit deposit and balance logic from `BankAccount` while each changes how withdrawals work. Frameworks use it heavily too — you subclass a base class like `unittest.TestCase` or a web framework's view class and override just the methods you need. That said, deep inheritance hierarchies get hard to follow; many Python developers prefer composition (an object holding other objects) when the relationship isn't clearly "is a kind of."
%%
Q: How do I handle errors in Python with try and except?
A: Wrap the code that might fail in a `try` block and handle specific exceptions in `except` blocks:

```python
def read_number(path):
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read().strip())
    except FileNotFoundError:
        print(f"{path} does not exist")
        return None
    except ValueError as exc:
        print(f"{path} does not contain a number: {exc}")
        return None
```

There are two more optional parts:

```python
try:
    result = risky_operation()
except ConnectionError:
    result = None
else:
    print("Succeeded")        # runs only if no exception happened
finally:
    print("Cleaning up")      # always runs, error or not
```

Some good habits:

1. **Catch specific exceptions.** A bare `except:` or `except Exception:` hides bugs, including typos in your own code, and makes problems hard to debug.
2. **Keep the `try` block small**, containing only the lines that can raise the error you're handling.
3. **Don't silently swallow errors.** If you can't do anything useful about an exception, let it propagate, or log it and re-raise with a plain `raise`.
4. **Use `finally` or a `with` statement for cleanup**, such as closing files or releasing locks.
5. **Raise your own exceptions** with clear messages when your function gets invalid input: `raise ValueError("age must be non-negative")`.

Python's style is often described as "easier to ask forgiveness than permission": try the operation and handle the failure, rather than checking every condition in advance.
S: Put risky code in `try`, catch specific exceptions in `except`, use `else` for the success path and `finally` for cleanup, and avoid bare `except:`.
%%
Q: Can you write a bash script that backs up a folder into a dated archive?
A: Here's a small, safe script:

```bash
#!/usr/bin/env bash
set -euo pipefail

SRC="${1:?usage: backup.sh SOURCE_DIR [DEST_DIR]}"
DEST="${2:-$HOME/backups}"
STAMP="$(date +%Y-%m-%d_%H%M%S)"
NAME="$(basename "$SRC")_$STAMP.tar.gz"

mkdir -p "$DEST"
tar -czf "$DEST/$NAME" -C "$(dirname "$SRC")" "$(basename "$SRC")"
echo "Created $DEST/$NAME"

# keep only the 7 most recent backups of this folder
ls -1t "$DEST/$(basename "$SRC")"_*.tar.gz | tail -n +8 | xargs -r rm --
```

How it works:

- `set -euo pipefail` makes the script stop on errors, on undefined variables, and on failures inside pipelines, instead of carrying on and doing something unexpected.
- `${1:?usage...}` exits with a usage message if you forget the source folder; `${2:-$HOME/backups}` uses a default destination.
- `date +%Y-%m-%d_%H%M%S` produces a sortable timestamp like `2024-03-05_141500`.
- `tar -czf` creates a gzip-compressed archive; `-C` changes into the parent directory first so the archive contains `photos/...` rather than the full absolute path.
- The last line lists backups newest first, skips the first seven, and deletes the rest.

Save it as `backup.sh`, run `chmod +x backup.sh`, and call it with `./backup.sh ~/Documents`. To run it every night at 2 a.m., add a line like `0 2 * * * /home/you/backup.sh /home/you/Documents` with `crontab -e`.
S: Use `tar -czf` with a `date`-based filename, `set -euo pipefail` for safety, and a cleanup line that keeps only the newest archives; schedule it with cron.
F: How do I restore from one of those archives?
FA: Extract it with `tar`, ideally into a temporary folder first so you don't overwrite anything by accident:

```bash
mkdir -p /tmp/restore
tar -xzf ~/backups/Documents_2024-03-05_141500.tar.gz -C /tmp/restore
ls /tmp/restore/Documents
```

You can list the contents without extracting using `tar -tzf archive.tar.gz`, and extract a single file by adding its path inside the archive at the end of the command.
%%
Q: What's a good git branching workflow for a small team?
A: For most small teams, a simple "feature branch" workflow (sometimes called GitHub flow) works well:

1. **`main` is always deployable.** Nobody commits directly to it.
2. **Every change gets its own short-lived branch**, named after what it does:
   ```bash
   git switch main
   git pull
   git switch -c fix-login-timeout
   ```
3. **Commit small, focused changes** with clear messages ("Fix session timeout on login page", not "stuff").
4. **Push the branch and open a pull request** early, even as a draft, so teammates can see what you're doing.
5. **Get a review and let automated tests run** on the pull request.
6. **Keep the branch up to date** with `main` if it lives more than a day or two:
   ```bash
   git fetch origin
   git rebase origin/main     # or: git merge origin/main
   ```
7. **Merge, then delete the branch.** Squash-merging keeps `main`'s history tidy, with one commit per pull request.

The main rule that makes this work is keeping branches short-lived — ideally a few days at most. Long-running branches drift away from `main`, and merging them becomes painful. If a feature is big, split it into smaller pull requests, and hide unfinished work behind a feature flag if needed.

Heavier models like Git Flow, with separate `develop`, `release`, and `hotfix` branches, make sense when you ship versioned releases on a schedule (for example, mobile apps or libraries), but they add overhead a small team usually doesn't need.
S: Keep `main` deployable, do every change on a short-lived feature branch, open a pull request for review and tests, then merge and delete the branch.
%%

@@ science
Q: How do airplanes stay in the air?
Q: Can you explain how a plane flies?
A: An airplane flies because its wings produce lift — an upward force — that balances its weight. Four forces are involved: lift (up), weight (down), thrust from the engines (forward), and drag from air resistance (backward).

**How wings make lift.** A wing is shaped and angled so that it deflects air downward as it moves forward. The wing is tilted slightly upward relative to the oncoming air (this is called the angle of attack), and its curved shape helps guide the airflow smoothly down behind it. By Newton's third law, if the wing pushes air down, the air pushes the wing up.

You can describe the same thing in terms of pressure. The air flowing over the top of the wing speeds up and its pressure drops, while the air underneath is at slightly higher pressure. That pressure difference across the large area of the wing adds up to a big upward force. These two explanations — deflecting air downward and the pressure difference — aren't competing theories; they're two views of the same physics.

A common myth says air over the top must go faster because it has "farther to travel" and has to meet the air from the bottom at the trailing edge. That's not true: the air over the top actually arrives at the back well before the air underneath.

**What pilots control.** Lift depends on air density, speed, wing area, and the angle of attack. To take off, a plane speeds down the runway until the wings make enough lift, then the pilot raises the nose to increase the angle of attack. Flaps extend from the wings during takeoff and landing to produce more lift at low speeds. If the angle of attack gets too steep, the airflow separates from the top of the wing and lift drops suddenly — that's a stall, which has nothing to do with the engine stalling.

Thrust from the engines doesn't hold the plane up directly; it keeps the plane moving fast enough for the wings to do their job. That's why gliders can fly for hours with no engine at all, trading height for speed.
S: Wings are shaped and angled to push air downward, creating a pressure difference and an upward lift force that balances the plane's weight; the engines just keep it moving fast enough.
F: So what actually happens in a stall?
FA: When the angle of attack gets too high — typically around 15° for many wings — the air can no longer follow the curved upper surface. It separates from the wing and becomes turbulent, and lift drops sharply while drag rises. The plane starts to sink and may drop a wing. The recovery is counterintuitive: the pilot must lower the nose to reduce the angle of attack so smooth airflow reattaches, then add power. Pulling back harder, which feels natural, makes it worse.
%%
Q: Can you explain evolution by natural selection?
A: Natural selection is the main mechanism of evolution, first described by Charles Darwin and Alfred Russel Wallace in the 1850s. It follows from a few observable facts:

1. **Variation.** Individuals in a population differ from one another — in size, color, speed, disease resistance, and countless other traits.
2. **Inheritance.** Many of those differences are passed from parents to offspring through genes.
3. **More offspring than can survive.** Most species produce more young than the environment can support, so there's competition for food, mates, and safety.
4. **Differential survival and reproduction.** Individuals whose inherited traits happen to suit their environment a bit better tend to survive longer and have more offspring.

Put those together, and over many generations the helpful traits become more common in the population, while unhelpful ones become rarer. Nobody is choosing; it's simply that the individuals who leave more descendants pass on more of their genes.

A classic example is the peppered moth in England. Before the Industrial Revolution, most of these moths were pale, which camouflaged them on lichen-covered trees. As soot darkened the trees, dark-colored moths were harder for birds to spot, and within decades they became the majority around industrial cities. When air pollution laws cleaned the air, the pale form became common again.

A few points people often get wrong:

- Individuals don't evolve; populations do, across generations.
- Evolution has no goal or direction toward "higher" forms. It just tracks what works in a given environment.
- New variations arise from random mutations and from the reshuffling of genes in sexual reproduction. Selection isn't random, but the raw material it works on is.
- "Survival of the fittest" means fitting the environment, not being the strongest.

Over very long periods, these small changes accumulate, and populations that become separated can diverge so much that they become different species.
S: Individuals vary, many variations are inherited, and those whose traits suit the environment better leave more offspring, so helpful traits become more common over generations.
%%
Q: How do lithium-ion batteries work?
A: A lithium-ion battery stores energy by moving lithium ions between two electrodes.

Inside each cell there are four main parts: a negative electrode (the anode, usually graphite), a positive electrode (the cathode, a metal oxide containing lithium, such as lithium iron phosphate or a nickel-manganese-cobalt mix), a liquid electrolyte that lets lithium ions move, and a thin porous separator that keeps the electrodes from touching.

**Discharging (using the battery).** Lithium atoms stored in the graphite give up an electron each and become positively charged ions. The ions travel through the electrolyte to the cathode. The electrons can't pass through the electrolyte, so they take the only route available — the external circuit — and that flow of electrons is the current powering your phone or car. At the cathode, ions and electrons meet up again.

**Charging.** The charger pushes the process in reverse, forcing electrons back to the anode and pulling the lithium ions back into the graphite, ready for next time.

Lithium is used because it's the lightest metal and gives up electrons very readily, so the batteries store a lot of energy for their weight.

**Why they wear out.** Every cycle causes small side reactions, such as a film growing on the anode that traps some lithium, and slight cracking of the electrode materials. Capacity slowly fades. Heat, keeping the battery at 100% for long periods, and regularly draining it to 0% all speed this up, which is why many devices now offer to stop charging at 80%.

**Safety.** If a cell is damaged, overcharged, or badly manufactured, the separator can fail and the electrodes short-circuit, causing rapid heating known as thermal runaway. That's why batteries have protection circuits and why you shouldn't use swollen or punctured ones.
S: Lithium ions shuttle between a graphite anode and a metal-oxide cathode through an electrolyte, while electrons flow through your device; charging pushes them back.
F: So is it bad to charge my phone overnight?
FA: Not really dangerous — the phone stops charging at full and protection circuits prevent overcharging. But sitting at 100% for hours, especially while warm, does add a little extra wear over time. Most modern phones have an "optimized" or "adaptive" charging setting that holds the battery around 80% overnight and finishes just before you usually wake up. Turn that on, avoid charging under a pillow where it can get hot, and you don't need to worry about it.
%%

@@ history
Q: What caused the French Revolution?
Q: Why did the French Revolution happen?
A: The French Revolution, which began in 1789, grew out of a combination of long-term tensions and short-term crises.

**A rigid, unequal society.** French society was divided into three "estates": the clergy, the nobility, and everyone else — about 97% of the population, from wealthy lawyers and merchants to poor peasants. The first two estates held most of the privileges and paid little tax, while the Third Estate carried most of the tax burden and had little political power.

**A government in debt.** France had spent heavily on wars, including its support for the American Revolution. By the 1780s, a huge share of the royal budget went to paying interest on debt. Attempts to reform taxes failed because the privileged classes resisted.

**Bad harvests and hunger.** In 1788 a poor harvest drove bread prices sharply up. Bread was the main food of ordinary people, and many families were spending most of their income on it. Hunger made cities, especially Paris, volatile.

**New ideas.** Enlightenment writers such as Rousseau, Voltaire, and Montesquieu had spread ideas about popular sovereignty, natural rights, and limits on royal power. The American Revolution showed those ideas could be put into practice.

**The political crisis of 1789.** To solve the debt, King Louis XVI called the Estates-General, a representative assembly that hadn't met since 1614. Arguments over voting — by estate, which favored the privileged, or by head, which favored the Third Estate — led the Third Estate to declare itself the National Assembly in June. In July, fearing the king would use troops against it, Parisians stormed the Bastille, a royal fortress and prison, on 14 July 1789.

From there events moved fast: the abolition of feudal privileges, the Declaration of the Rights of Man and of the Citizen, the end of the monarchy in 1792, the execution of the king in 1793, the violent period known as the Terror, and eventually the rise of Napoleon Bonaparte in 1799.
S: Deep social inequality, a bankrupt government, soaring bread prices and Enlightenment ideas came together in 1789, when a fight over the Estates-General escalated into revolution.
F: What was the Terror?
FA: The Terror (roughly September 1793 to July 1794) was the most violent phase of the Revolution. Facing foreign war, internal rebellion, and economic chaos, the Committee of Public Safety, dominated by Maximilien Robespierre, used emergency powers to crush suspected enemies of the Revolution. Around 17,000 people were officially executed, many by guillotine, and many more died in prison or in the brutal suppression of revolts. It ended when Robespierre's own colleagues turned against him; he was executed in July 1794.
%%
Q: How did the internet start?
A: The internet grew out of research projects in the 1960s and 1970s, mostly funded by the US Department of Defense's Advanced Research Projects Agency (ARPA).

**ARPANET (1969).** The first network, ARPANET, connected computers at four universities in California and Utah. Its first message, in October 1969, was supposed to be "LOGIN," but the system crashed after "LO." ARPANET used packet switching — breaking data into small packets that travel independently and are reassembled at the destination — an idea developed independently by Paul Baran in the US and Donald Davies in the UK. It made networks more robust and efficient than dedicated phone-style circuits.

**TCP/IP (1970s–1983).** As different networks appeared, they needed a common language. Vint Cerf and Bob Kahn designed TCP/IP, a set of protocols that let any network connect to any other — a "network of networks," which is literally what "internet" means. ARPANET switched to TCP/IP on 1 January 1983, often considered the internet's birthday.

**Growth in universities (1980s).** The Domain Name System (DNS) arrived in 1983, so people could use names like example.com instead of numeric addresses. Networks like the US National Science Foundation's NSFNET connected universities across the country, and email became the killer app.

**The World Wide Web (1989–1991).** The internet and the web are not the same thing. The web — pages linked together with hyperlinks, viewed in a browser — was invented by Tim Berners-Lee at CERN in Switzerland in 1989, and went public in 1991. He also made it royalty-free, which helped it spread.

**Going mainstream (1990s).** Graphical browsers like Mosaic (1993) and Netscape made the web easy to use, commercial restrictions were lifted, and the number of users exploded. From there came search engines, online shopping, and eventually social media and smartphones.
S: It began as ARPANET in 1969, became a "network of networks" with TCP/IP in 1983, and went mainstream after Tim Berners-Lee invented the World Wide Web in 1989–91.
%%

@@ math
Q: How do I solve a quadratic equation?
Q: Can you show me how to solve x² − 5x + 6 = 0?
A: A quadratic equation has the form ax² + bx + c = 0. There are three common methods; let's use x² − 5x + 6 = 0 as the example, where a = 1, b = −5, and c = 6.

**1. Factoring.** Look for two numbers that multiply to c (6) and add to b (−5). Those are −2 and −3. So

x² − 5x + 6 = (x − 2)(x − 3) = 0.

A product is zero only if one of the factors is zero, so x = 2 or x = 3.

**2. The quadratic formula.** This works for every quadratic, even ones that don't factor nicely:

x = (−b ± √(b² − 4ac)) / (2a)

Plugging in: b² − 4ac = 25 − 24 = 1, so

x = (5 ± √1) / 2 = (5 ± 1) / 2, giving x = 3 or x = 2.

**3. Completing the square.** Rewrite the equation as x² − 5x = −6. Add (5/2)² = 6.25 to both sides: x² − 5x + 6.25 = 0.25, which is (x − 2.5)² = 0.25. Taking square roots, x − 2.5 = ±0.5, so x = 3 or x = 2.

**The discriminant.** The expression b² − 4ac tells you what kind of solutions to expect before you solve: if it's positive, there are two real solutions; if it's zero, there's exactly one (a repeated root); if it's negative, there are no real solutions (the solutions are complex numbers).

Always check your answers by substituting them back: 2² − 5·2 + 6 = 4 − 10 + 6 = 0 ✓ and 3² − 5·3 + 6 = 9 − 15 + 6 = 0 ✓.
S: Factor it if you can — here (x − 2)(x − 3) = 0, so x = 2 or 3 — and otherwise use the quadratic formula x = (−b ± √(b² − 4ac)) / 2a.
%%
Q: A price goes up 20% and then down 20%. Is it back to the original price?
A: No — it ends up lower. Take a price of $100:

- Up 20%: 100 × 1.20 = $120.
- Down 20%: 120 × 0.80 = $96.

The final price is $96, 4% below where it started. The reason is that the second percentage is applied to a bigger number: the 20% drop removes $24, while the 20% rise only added $20.

In general, a rise of p% followed by a fall of p% multiplies the price by (1 + p/100)(1 − p/100) = 1 − (p/100)², which is always less than 1. For 20%, that's 1 − 0.04 = 0.96.

This trips people up in real life, too. If an investment loses 50%, it needs to gain 100% — not 50% — just to get back to even: $100 falls to $50, and $50 must double to return to $100.
S: No. $100 rises to $120 and then falls to $96, because the 20% drop is taken from the larger amount.
F: What increase would I need to get back to $100 from $96?
FA: You need to add $4 to $96, and 4 ÷ 96 ≈ 0.0417, so an increase of about 4.17%. Check: 96 × 1.0417 ≈ 100.
%%
Q: How much pure juice do I need to mix with a 20% juice drink to get 2 liters of 50% juice?
A: Let x be the liters of pure (100%) juice. The rest, 2 − x liters, is the 20% drink.

The amount of actual juice must add up to 50% of 2 liters, which is 1 liter:

1.00·x + 0.20·(2 − x) = 1
x + 0.4 − 0.2x = 1
0.8x = 0.6
x = 0.75

So mix 0.75 liters of pure juice with 1.25 liters of the 20% drink. Check: 0.75 + 0.2 × 1.25 = 0.75 + 0.25 = 1 liter of juice in 2 liters, which is 50%. ✓
S: 0.75 liters of pure juice plus 1.25 liters of the 20% drink.
%%
""")

BLOCKS.append(r"""
@@ cooking
Q: How do I meal prep for the whole week without getting bored?
Q: Any tips for weekly meal prep?
A: The trick to meal prep that doesn't get boring is to prep components rather than five identical boxes of the same dish. Spend about two hours on Sunday making building blocks you can mix and match.

**1. Pick two grains or starches.** For example, a pot of rice and a tray of roasted potatoes, or quinoa and whole-wheat pasta. Cook them plainly so they go with anything.

**2. Cook two proteins with different flavors.** Maybe chicken thighs roasted with smoked paprika and garlic, and a pot of lentils or black beans simmered with cumin and onion. Hard-boiled eggs are a great third option.

**3. Roast a big tray of vegetables and prep some raw ones.** Roast broccoli, peppers, and carrots at 220 °C for 25 minutes. Wash salad greens, slice cucumbers, and shred cabbage for crunch.

**4. Make two sauces.** This is what keeps things interesting. A lemon-tahini sauce, a peanut-lime dressing, a jar of salsa, a yogurt-herb dip — each turns the same base ingredients into a different meal.

Then assemble through the week:

- Monday: rice bowl with chicken, roasted veg, and peanut-lime sauce.
- Tuesday: lentil and potato salad with greens and tahini dressing.
- Wednesday: burrito bowl with beans, rice, salsa, and cabbage.
- Thursday: pasta tossed with roasted veg, chicken, and a spoon of pesto.
- Friday: use up leftovers in an omelet or fried rice.

A few practical tips: cooked food keeps about 3–4 days in the fridge, so freeze anything meant for Thursday or Friday, or plan a quick mid-week top-up cook. Store sauces separately so things don't get soggy. And good containers — glass ones you can reheat in — make it much more likely you'll actually eat what you prepared.
S: Prep components instead of identical meals — a couple of grains, two proteins, roasted veg and two or three sauces — then mix them into different meals through the week.
F: How long does cooked chicken last in the fridge?
FA: Cooked chicken keeps safely for about 3 to 4 days in the fridge at 4 °C or below. Cool it and refrigerate it within two hours of cooking, store it in a sealed container, and reheat it until it's steaming hot all the way through. If you won't eat it within that window, freeze it — it keeps well for two to three months.
%%
Q: How do I make my own sourdough starter?
A: A sourdough starter is just flour and water that has been colonized by wild yeast and bacteria. It takes about a week to get going.

**What you need:** whole-wheat or rye flour to start (they have more of the microbes and nutrients that help), all-purpose or bread flour for feeding later, water, a clean glass jar, and a kitchen scale if you have one.

**Day 1.** Mix 50 g of whole-wheat or rye flour with 50 g of lukewarm water in the jar until there are no dry bits. Cover it loosely (a lid resting on top, not screwed on) and leave it somewhere warm, ideally 24–27 °C.

**Day 2.** You might see a few bubbles, or nothing at all. Both are fine. Add another 50 g of flour and 50 g of water and stir.

**Days 3–7.** Once a day, discard all but about 50 g of the starter, then feed it with 50 g of flour and 50 g of water. Discarding feels wasteful, but it keeps the starter from growing huge and keeps the acidity in balance. You can switch to white flour, or a mix, from around day 3.

Around days 2–4 there's often a burst of activity followed by a quiet period where nothing seems to happen. Don't give up — that's normal; early bacteria are dying off and the stable yeast population is taking over.

**When is it ready?** When it reliably doubles in size within 4–8 hours after a feeding, has lots of bubbles throughout, and smells pleasantly sour and yeasty, like yogurt or beer. A small spoonful dropped in water should float.

**Looking after it.** If you bake often, keep it on the counter and feed it daily. If you bake weekly, keep it in the fridge and feed it once a week; take it out and feed it a day before baking. A layer of grey liquid on top ("hooch") just means it's hungry — pour it off and feed it. Pink or orange streaks or fuzzy mold mean it's time to throw it out and start over.
S: Mix equal weights of whole-grain flour and water, then discard and feed it daily for about a week somewhere warm until it reliably doubles within 4–8 hours.
F: What can I do with the discard?
FA: Lots of things! Sourdough discard adds a pleasant tang to pancakes, waffles, crackers, flatbreads, and banana bread — replace some of the flour and liquid in the recipe with an equal weight of discard. You can also collect it in a jar in the fridge for up to a week and use it all at once. It won't make things rise much on its own, so keep the baking powder or soda in those recipes.
%%

@@ travel
Q: I'm visiting Japan for the first time. What etiquette should I know?
A: Japan is very welcoming to visitors, and nobody expects you to be perfect, but a few customs will help you fit in and show respect:

**Shoes.** Take them off when entering homes, traditional inns (ryokan), many temples, and some restaurants with raised tatami floors. Look for a step up at the entrance or a row of slippers. There are often separate slippers for the toilet — don't forget to swap back.

**Quiet in public.** People keep their voices down on trains and buses, and talking on the phone there is frowned upon. Set your phone to silent ("manner mode").

**Tipping.** Don't tip. It can cause confusion, and staff may chase after you to return the money. Excellent service is simply expected.

**Money and handing things over.** At shops you'll often see a small tray by the register; place your cash or card there rather than handing it directly. When giving or receiving something like a business card, use both hands.

**Eating.** Don't stick your chopsticks upright in a bowl of rice or pass food from chopsticks to chopsticks — both are associated with funerals. Slurping noodles is completely fine. Eating while walking down the street is generally avoided, though it's more accepted at festivals and food markets.

**Onsen (hot springs).** Wash thoroughly at the showers before getting into the bath, don't bring your towel into the water (people often fold it on their heads), and bathe without a swimsuit. Some onsen don't allow visible tattoos, so check in advance if that applies to you.

**Trash.** There are few public bins, so carry a small bag for your rubbish and sort it when you find recycling bins, often next to vending machines or at convenience stores.

**Lines and escalators.** People queue neatly, including for trains. On escalators, stand on the left in Tokyo and on the right in Osaka.

A simple "sumimasen" (excuse me / sorry) and "arigatō gozaimasu" (thank you very much) will go a long way.
S: Take off your shoes where expected, keep quiet on public transport, don't tip, use both hands to give and receive, follow chopstick and onsen customs, and carry your trash with you.
%%
Q: How should I plan a long road trip?
A: A good road trip balances a plan with room for surprises. Here's how to approach it:

**1. Set the basics.** Decide how many days you have, your start and end points, and the rough budget. Be realistic about driving: four to six hours a day is comfortable; more than eight gets exhausting and leaves no time to enjoy the places you pass.

**2. Sketch the route.** Mark the must-see stops on a map first, then connect them. Look for scenic alternatives to highways for some stretches — they're slower but often the highlight of the trip.

**3. Book the key nights.** In busy seasons or popular areas like national parks, book accommodation ahead. Elsewhere, you can leave some nights flexible and book the same morning on your phone.

**4. Prepare the car.** Before leaving, check tire pressure and tread, oil, coolant, wipers, and lights, or get a quick service. Make sure you have a spare tire and jack, and consider roadside assistance coverage.

**5. Pack smart.** Keep a small day bag accessible so you don't have to unpack the whole trunk every night. Bring a phone mount, a car charger, a first aid kit, water, snacks, a blanket, and offline maps for areas with poor signal.

**6. Plan fuel and breaks.** In remote areas, fill up whenever you drop to half a tank; gas stations can be far apart. Stop every two hours to stretch and switch drivers if you can.

**7. Make it fun.** Build playlists and download podcasts or audiobooks ahead of time, and leave at least one unplanned afternoon for that roadside diner or viewpoint you didn't know existed.

Finally, share your rough itinerary with someone at home, especially if you'll be driving through areas without cell coverage.
S: Limit driving to four to six hours a day, plan must-see stops and book key nights, get the car checked, pack a handy day bag and emergency kit, refuel early in remote areas, and leave room for spontaneity.
%%

@@ writing
Q: How should I structure a persuasive essay?
A: A classic persuasive essay follows a clear structure that leads the reader step by step toward your position.

**Introduction.** Open with a hook — a surprising fact, a short anecdote, or a sharp question — that makes the reader care about the issue. Give a little background so they understand what's at stake, then end the paragraph with your thesis: a clear, specific statement of what you're arguing.

**Body paragraphs (usually three).** Each paragraph makes one reason in support of your thesis:

- Start with a topic sentence that states the reason.
- Back it up with evidence: statistics, examples, expert opinions, or logical reasoning.
- Explain how the evidence supports your point. Don't assume it's obvious — this analysis is where essays are won or lost.
- Link back to the thesis at the end of the paragraph.

Put your strongest argument either first, to grab attention, or last, to leave a lasting impression.

**Counterargument and rebuttal.** Dedicate a paragraph to the best objection to your position. State it fairly, then respond: show why it's wrong, why it matters less than your points, or how your position accounts for it. Addressing the other side makes you more convincing, not less, because it shows you've thought it through.

**Conclusion.** Restate your thesis in fresh words, briefly pull together your main reasons, and end with something that resonates: a call to action, a look at the consequences, or a return to the image from your hook.

A few style tips: use confident but not aggressive language, vary your evidence types, avoid logical fallacies like attacking people instead of ideas, and cut anything that doesn't directly serve the argument.
S: Hook and thesis in the introduction, one well-supported reason per body paragraph, a fair counterargument with a rebuttal, and a conclusion that restates the thesis and ends with impact.
F: How long should each body paragraph be?
FA: For a typical school or college essay, aim for about 150–250 words per body paragraph — roughly five to eight sentences. That's enough room for a topic sentence, a piece or two of evidence, your explanation, and a linking sentence. If a paragraph runs much longer, it's often trying to make two points and should be split.
%%
Q: Can you write the opening of a short story about a lighthouse keeper?
A: Here's an opening you could build on:

The lamp had not gone out in forty-one years, and Elias Marr did not intend to let it go out on his watch, even if his watch was the last one.

The letter from the harbor authority sat on the kitchen table under the salt cellar, where it had been since Tuesday. Automation, it said. A modern light, solar-powered, maintained by a technician who would visit twice a year by boat. Elias had read it three times and then put the salt cellar on it, the way you might put a stone on a grave.

Every evening he still climbed the hundred and twelve steps. He still wiped the great lens with a chamois cloth, the way his father had shown him, in small circles, never pressing. He still wrote in the logbook: wind, sea state, visibility, vessels sighted. Lately there had been fewer vessels. Lately he had begun writing other things in the margins — the color of the sky, a gull that had landed on the gallery rail and stared at him like it wanted to say something.

Tonight the fog was coming in thick from the southwest, swallowing the rocks one by one. Elias lit the lamp, and the beam swept out over the water, white and patient.

That was when he saw it: a small light, far out, blinking back at him. Three short. Three long. Three short.

No one had sent that signal to the lighthouse in all his years. He reached for the logbook, and found that his hand was shaking.
S: An aging lighthouse keeper facing automation sees a distress signal — SOS — blinking back at him from the fog.
F: What happens next? Give me a few ideas.
FA: A few directions the story could take:

1. **A real rescue.** Elias takes his old rowing boat out into the fog and finds a young sailor stranded on the rocks — someone connected to the harbor authority's plan, which complicates everything.
2. **A ghost story.** The signal comes from the exact spot where his father's boat was lost decades ago, and it repeats every foggy night.
3. **A quieter twist.** The signal is from the technician who was supposed to replace him, whose boat has broken down — and Elias has to decide whether to save the person who represents his ending.

Each one lets the story explore what Elias's job really means to him.
%%
Q: I have to give a speech at my best friend's wedding. How do I write it?
A: A great wedding speech is warm, personal, and short — around three to five minutes, which is roughly 400 to 700 words spoken at a relaxed pace. Here's a structure that works:

**1. Introduce yourself (one or two sentences).** Not everyone knows you. "For those who don't know me, I'm Sam, and I've been Alex's best friend since we were stuck together on a disastrous school camping trip at age twelve."

**2. A story about your friend.** Pick one or two specific, affectionate stories that show who they are — their loyalty, their humor, the way they always show up for people. Specific details beat general praise. Gentle teasing is fine; anything embarrassing in front of grandparents, exes, or their boss is not.

**3. The couple.** Talk about when you first realized this relationship was different — the first time you met their partner, or a moment when you saw how they are together. Say something genuine about what the partner brings out in your friend.

**4. A wish for their future.** A short line about what you hope for them, maybe a quote if it truly fits, but don't feel obligated.

**5. The toast.** Ask everyone to stand and raise their glasses: "To Alex and Jordan."

Practical tips:

- Write it out, then practice it out loud several times; you'll find where it's too long and where sentences trip you up.
- Bring notes on cards rather than reading from your phone.
- Avoid inside jokes that most of the room won't get.
- Go easy on the drinks before you speak.
- It's okay to get emotional. Pause, breathe, and carry on — people love that.
S: Keep it to three to five minutes: introduce yourself, tell a specific affectionate story about your friend, speak sincerely about the couple, offer a wish for their future, and finish with a toast.
%%

@@ everyday
Q: Can you give me a checklist for moving to a new apartment?
A: Here's a checklist organized by timeline:

**Four to six weeks before**
- Declutter: sell, donate, or throw out anything you don't want to pay to move.
- Book movers or reserve a rental van; prices rise close to the date, especially at the end of the month.
- Collect boxes, tape, markers, and packing paper.
- Check your lease for notice requirements and the move-out cleaning rules.

**Two to three weeks before**
- Start packing rarely used items: books, seasonal clothes, decorations.
- Label each box with its room and a short list of contents.
- Arrange to set up internet at the new place — installation can take a while.
- Update your address with your bank, employer, doctor, subscriptions, and the post office (set up mail forwarding).

**The week before**
- Pack everything except essentials.
- Confirm the time with movers or friends who are helping.
- Defrost the freezer if you're moving the fridge.
- Pack an "open first" box: toilet paper, soap, towels, phone chargers, basic tools, a kettle or coffee maker, snacks, medications, bedding for the first night.

**Moving day**
- Take photos of the old place once it's empty and clean, for your deposit.
- Read the meters and note the numbers.
- At the new place, check for existing damage and photograph it before unloading.
- Assemble your bed first, so you have somewhere to collapse tonight.

**After the move**
- Change utilities into your name, and register to vote or update your ID if required.
- Unpack the kitchen and bathroom first; the rest can wait.
- Meet a neighbor or two — it helps to know someone nearby.
S: Declutter and book movers a month or more ahead, pack and label by room, update your address and internet, keep an "open first" box, photograph both apartments, and set up the bed first.
%%
Q: How do I negotiate a higher salary for a job offer?
A: Negotiating an offer is normal and expected — most employers leave room for it, and a polite negotiation rarely causes an offer to be withdrawn. Here's how to approach it:

**1. Do your research.** Find salary ranges for the role, level, and location from salary surveys, job postings that list pay, and people in your network. Decide on three numbers: your ideal figure, a realistic target, and the minimum you'd accept.

**2. Let them make the first offer if possible.** If you're asked early for your expectations, you can say you'd like to learn more about the role first, or give a researched range whose bottom is still a number you'd be happy with.

**3. Express enthusiasm first.** Start with something like: "Thank you — I'm really excited about this role and the team." You want them to know you want to say yes.

**4. Make a specific, justified ask.** "Based on my research for similar roles in this area, and the experience I bring in building data pipelines, I was hoping for a base salary closer to $85,000. Is there flexibility there?" A specific number anchors the conversation better than "a bit more."

**5. Then stop talking.** Silence feels uncomfortable, but let them respond.

**6. Consider the whole package.** If the base salary can't move, ask about a signing bonus, an earlier review date, more vacation days, remote work flexibility, or a training budget.

**7. Get it in writing.** Once you agree, ask for an updated offer letter before you formally accept.

Stay friendly and collaborative throughout — you're solving a problem together, not fighting. And remember that your starting salary often sets the baseline for future raises, so a few minutes of awkwardness can be worth a lot over the years.
S: Research the market, show enthusiasm, ask for a specific justified number, then pause; if base pay is fixed, negotiate other benefits, and get the final offer in writing.
%%

@@ health
Q: How do I read a nutrition label?
A: Nutrition labels pack a lot of information into a small box. Here's how to read one in a useful order:

**1. Serving size first.** Every number on the label refers to one serving, and the serving size is often smaller than what people actually eat. If a bag of chips says a serving is 28 g and you eat the whole 150 g bag, multiply everything by about five.

**2. Calories (energy).** This tells you how much energy one serving provides. In many countries it's shown in both kilocalories (kcal) and kilojoules (kJ); 1 kcal is about 4.2 kJ.

**3. Nutrients to limit.** Look at saturated fat, sodium (salt), and added sugars. The "% Daily Value" (%DV) column helps here: as a rough guide, 5% or less of the daily value per serving is low, and 20% or more is high.

**4. Nutrients to get more of.** Fiber, protein, and vitamins and minerals such as vitamin D, calcium, iron, and potassium. Higher %DV is better for these.

**5. The ingredient list.** Ingredients are listed by weight, from most to least. If sugar (or one of its many names — glucose syrup, dextrose, cane juice, maltose) appears near the top, the product is sugar-heavy. A long list of unfamiliar ingredients usually signals a highly processed food, though not always an unhealthy one.

**6. Compare per 100 g.** European labels, and many others, list values per 100 g as well as per serving. That's the easiest way to compare two similar products fairly, since their serving sizes may differ.

Be a bit skeptical of front-of-pack claims like "natural," "light," or "multigrain" — the label on the back tells the real story.
S: Check the serving size first, then calories, then %DV — 5% or less is low, 20% or more is high — limit saturated fat, salt and added sugar, and compare products per 100 g.
%%
Q: What are some practical ways to manage stress?
A: Stress is a normal response, but when it's constant it affects sleep, mood, and health. Some approaches with good evidence behind them:

**Move your body.** Regular physical activity is one of the most reliable stress reducers. It doesn't have to be intense — a brisk 20–30 minute walk most days helps.

**Breathe slowly.** When you feel tense, try breathing in through your nose for about 4 seconds and out for 6–8 seconds, for a few minutes. Long exhales activate the body's calming response.

**Protect your sleep.** Stress and poor sleep feed each other. Keep a regular schedule and a wind-down routine without screens.

**Write it down.** Spending ten minutes writing about what's worrying you, or simply listing everything on your mind, can make problems feel more manageable. A "worry list" before bed helps some people stop ruminating at night.

**Break problems into next steps.** Much stress comes from vague, overwhelming tasks. Ask: what is the single next action I can take? Then do just that.

**Limit the inputs.** Turn off non-essential notifications and set specific times to check news and email rather than grazing all day.

**Stay connected.** Talking with friends or family — even about unrelated things — is a powerful buffer against stress.

**Practice saying no.** Overcommitting is one of the most common sources of chronic stress.

If stress is persistent, is interfering with your work or relationships, or comes with feelings of hopelessness, talk to a doctor or a mental health professional. Therapies like CBT are very effective, and asking for help is a sensible step, not a weakness.
S: Move regularly, breathe slowly with long exhales, protect your sleep, write down worries, break problems into next steps, limit notifications, stay connected, and seek professional help if stress persists.
%%

@@ misc
Q: How does inflation work?
Q: Can you explain inflation in simple terms?
A: Inflation is the general rise in prices across an economy over time, which means each unit of money buys a little less than it used to. If inflation is 3% a year, something that costs $100 today will cost about $103 next year, on average.

**How it's measured.** Statistics agencies track the prices of a "basket" of typical goods and services — food, rent, fuel, clothing, transport, and so on — and measure how much that basket's cost changes. The best-known measure is the Consumer Price Index (CPI).

**What causes it.** Broadly, prices rise when demand outpaces what the economy can supply:

- *Demand-pull inflation:* people and businesses want to buy more than can be produced — for example, when the economy is booming or the government spends heavily.
- *Cost-push inflation:* production costs rise — say, oil prices jump or supply chains break down — and businesses pass the costs on.
- *Expectations:* if everyone expects prices to rise, workers ask for higher wages and firms raise prices in advance, which can make inflation self-reinforcing.
- *Money supply:* if the amount of money grows much faster than the economy's output, prices tend to rise.

**Is it bad?** A little inflation is considered healthy. Most central banks, including the US Federal Reserve and the European Central Bank, aim for about 2% a year. Mild inflation encourages spending and investment rather than hoarding cash, and gives wages room to adjust. High inflation is harmful: it erodes savings, makes planning hard, and hurts people on fixed incomes the most. Deflation — falling prices — can also be damaging, because people delay purchases and debts become harder to repay.

**How it's controlled.** Central banks mainly use interest rates. Raising rates makes borrowing more expensive, which cools spending and slows price growth; cutting rates does the opposite.
S: Inflation is the general rise in prices over time, so money buys less; it's caused by demand outpacing supply or rising costs, and central banks aim for about 2% using interest rates.
F: How does inflation affect my savings?
FA: If your savings earn less interest than the inflation rate, they lose purchasing power even though the number in your account stays the same or grows slightly. With 4% inflation and a savings account paying 1%, your money buys about 3% less each year. That's why, for long-term goals, people often invest part of their savings in things that have historically outpaced inflation, like diversified stock funds, while keeping an emergency fund in a safe, easy-to-access account.
%%
Q: How should a beginner start investing?
A: Here's a sensible path for most beginners. (This is general information, not personal financial advice.)

**1. Build a foundation first.** Before investing, pay off high-interest debt like credit cards — no investment reliably beats a 20% interest rate. Then build an emergency fund of roughly three to six months of essential expenses in a savings account.

**2. Use tax-advantaged accounts.** If your employer offers a retirement plan with matching contributions, contribute at least enough to get the full match; it's effectively free money. Then look at retirement or tax-free savings accounts available in your country.

**3. Keep it simple with index funds.** An index fund or ETF that tracks a broad market index, like a total world or total stock market fund, gives you a small piece of thousands of companies at once. Fees are low, and you don't have to pick winners — which even professionals rarely do consistently.

**4. Match your mix to your timeline.** Money you'll need within about five years shouldn't be heavily in stocks, because markets can drop 30% or more in a bad year. For long-term goals like retirement, a higher share of stocks makes sense; many people add bonds as they get closer to needing the money.

**5. Invest regularly.** Set up automatic monthly contributions. This "dollar-cost averaging" means you buy more shares when prices are low and fewer when they're high, and removes the temptation to time the market.

**6. Keep costs low.** Fees of 1% a year may sound small, but over decades they can eat a large fraction of your returns. Look for funds with expense ratios well under 0.3%.

**7. Stay the course.** Markets go up and down. Selling in a panic during a downturn is the most common way beginners lose money. Check your portfolio occasionally, not daily.
S: Pay off high-interest debt and build an emergency fund first, use tax-advantaged accounts, invest regularly in low-cost broad index funds suited to your timeline, and don't panic-sell in downturns.
%%
""")

BLOCKS.append(r"""
@@ programming
Q: What are decorators in Python?
Q: Can you explain Python decorators with an example?
A: A decorator is a function that takes another function and returns a modified version of it. It lets you add behavior — logging, timing, caching, access checks — around a function without changing the function's own code.

Here's a decorator that measures how long a function takes:

```python
import functools
import time

def timed(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = func(*args, **kwargs)
        elapsed = time.perf_counter() - start
        print(f"{func.__name__} took {elapsed:.3f}s")
        return result
    return wrapper

@timed
def slow_sum(n):
    return sum(i * i for i in range(n))

slow_sum(1_000_000)   # prints something like: slow_sum took 0.061s
```

What's happening:

1. `timed` receives the original function `func`.
2. It defines a new function, `wrapper`, which does some work before and after calling `func`, and passes through any arguments with `*args, **kwargs`.
3. It returns `wrapper`.
4. The `@timed` line above `slow_sum` is just shorthand for `slow_sum = timed(slow_sum)`. From then on, calling `slow_sum` actually calls `wrapper`.

`functools.wraps` copies the original function's name and docstring onto the wrapper, so debugging tools and `help()` still show the right information. Always include it.

You've probably already used built-in decorators: `@staticmethod`, `@classmethod`, and `@property` on class methods, or `@functools.lru_cache`, which caches a function's results:

```python
from functools import lru_cache

@lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

print(fib(80))  # instant, thanks to caching
```

Decorators can also take arguments, like `@retry(times=3)`; that needs one more layer of nesting — a function that returns the decorator.
S: A decorator wraps a function to add behavior before or after it runs; `@timed` above a function is shorthand for `func = timed(func)`.
F: How would I write the retry decorator with an argument?
FA: You add an outer function that takes the argument and returns the actual decorator:

```python
import functools
import time

def retry(times=3, delay=1.0):
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for attempt in range(1, times + 1):
                try:
                    return func(*args, **kwargs)
                except Exception:
                    if attempt == times:
                        raise
                    time.sleep(delay)
        return wrapper
    return decorator

@retry(times=5, delay=0.5)
def fetch_data():
    ...
```

`@retry(times=5)` first calls `retry(...)`, which returns `decorator`, and that is then applied to `fetch_data`. In real code, catch only the specific exceptions worth retrying, such as network errors.
%%
Q: What's the difference between INNER JOIN and LEFT JOIN in SQL?
A: Both combine rows from two tables based on a matching condition; the difference is what happens to rows that don't have a match.

Suppose you have these tables:

```
customers                orders
id | name                id | customer_id | total
1  | Ana                 10 | 1           | 25.00
2  | Ben                 11 | 1           | 40.00
3  | Chloé               12 | 3           | 15.50
```

**INNER JOIN** returns only rows where a match exists in both tables:

```sql
SELECT c.name, o.total
FROM customers c
INNER JOIN orders o ON o.customer_id = c.id;
```

Result: Ana 25.00, Ana 40.00, Chloé 15.50. Ben has no orders, so he doesn't appear.

**LEFT JOIN** returns every row from the left table (the one after `FROM`), plus matching rows from the right table. Where there's no match, the right-hand columns are `NULL`:

```sql
SELECT c.name, o.total
FROM customers c
LEFT JOIN orders o ON o.customer_id = c.id;
```

Result: Ana 25.00, Ana 40.00, Ben NULL, Chloé 15.50.

A very common use of LEFT JOIN is finding rows that have no match — for example, customers who have never ordered:

```sql
SELECT c.name
FROM customers c
LEFT JOIN orders o ON o.customer_id = c.id
WHERE o.id IS NULL;
```

That returns just Ben. There's also RIGHT JOIN (the mirror image, rarely used since you can swap the table order) and FULL OUTER JOIN, which keeps unmatched rows from both sides.

One gotcha: if you put a condition on the right table in the `WHERE` clause, such as `WHERE o.total > 20`, you silently turn your LEFT JOIN back into an INNER JOIN, because rows with `NULL` totals get filtered out. Put such conditions in the `ON` clause instead if you want to keep unmatched rows.
S: INNER JOIN keeps only rows that match in both tables; LEFT JOIN keeps every row from the left table and fills in NULLs where the right table has no match.
%%
Q: How do I use regular expressions in Python?
A: Python's `re` module handles regular expressions. The most useful functions are `re.search` (find the first match anywhere), `re.findall` (all matches as a list), `re.sub` (search and replace), and `re.fullmatch` (check that the whole string matches).

```python
import re

text = "Order #1042 shipped on 2024-03-05; order #1043 on 2024-03-07."

# Find all order numbers
print(re.findall(r"#(\d+)", text))          # ['1042', '1043']

# Find the first date and pull out its parts
m = re.search(r"(\d{4})-(\d{2})-(\d{2})", text)
if m:
    year, month, day = m.groups()
    print(year, month, day)                  # 2024 03 05

# Replace dates with a placeholder
print(re.sub(r"\d{4}-\d{2}-\d{2}", "<date>", text))

# Validate a simple username: 3-16 letters, digits or underscores
print(bool(re.fullmatch(r"\w{3,16}", "ada_l")))   # True
```

A quick cheat sheet for the pattern syntax:

- `\d` digit, `\w` letter/digit/underscore, `\s` whitespace, `.` any character except newline
- `+` one or more, `*` zero or more, `?` optional, `{3,16}` between 3 and 16
- `^` start of string, `$` end of string
- `[abc]` any of a, b, c; `[^abc]` anything except those
- `( )` captures a group you can extract; `(?:...)` groups without capturing
- `|` means "or": `cat|dog`

Always write patterns as raw strings (`r"..."`) so that backslashes reach the regex engine unchanged. If you use the same pattern many times, compile it once with `pattern = re.compile(r"...")`. And remember the old joke — regexes are great for small, well-defined patterns, but for parsing HTML, JSON, or CSV, use a proper parser instead.
S: Use the `re` module — `search`, `findall`, `sub` and `fullmatch` — with raw-string patterns like `r"\d+"`, and capture parts with parentheses.
%%
Q: What's a good systematic way to debug a program?
A: When a bug isn't obvious, guessing and changing random things wastes time. A systematic approach:

**1. Reproduce it reliably.** Find the exact input and steps that trigger the bug. If it only happens sometimes, note everything about when it does — timing, data, environment. A bug you can reproduce on demand is half solved.

**2. Read the error message carefully.** Sounds obvious, but the traceback usually tells you the exact line and the kind of problem. Read it from the bottom up: the last line is the error, and the lines above show how the program got there.

**3. Form a hypothesis.** Based on the evidence, what do you think is wrong? "The list is empty when it reaches this function" is a testable hypothesis.

**4. Test the hypothesis.** Add a print or logging statement, or better, use a debugger: set a breakpoint (in Python, put `breakpoint()` on a line) and inspect variables step by step. Check what the values actually are, not what you assume they are.

**5. Narrow it down.** If you don't know where the problem is, cut the search space in half: check the data at the midpoint of the process. If it's already wrong there, the bug is earlier; if not, it's later. For bugs that appeared recently, `git bisect` does the same thing across commits.

**6. Simplify.** Strip the failing case down to the smallest input and the least code that still shows the bug. Often the cause becomes obvious along the way.

**7. Fix the cause, not the symptom.** Ask why the bad value got there, not just how to handle it at the point of the crash.

**8. Add a test.** Write a test that fails with the bug and passes with the fix, so it never quietly returns.

And when you've been stuck for a while, explain the problem out loud, line by line, to a colleague or even a rubber duck. Saying your assumptions out loud is remarkably good at exposing the wrong one.
S: Reproduce it, read the error, form and test hypotheses with a debugger, narrow the search by halving, simplify the failing case, fix the root cause, and add a regression test.
%%

@@ science
Q: How does the human heart work?
A: The heart is a muscular pump about the size of your fist, and it actually works as two pumps side by side.

**Four chambers.** Each side has an upper chamber (atrium) that receives blood and a lower chamber (ventricle) that pumps it out. The right side handles blood returning from the body, which is low in oxygen; the left side handles blood coming back from the lungs, rich in oxygen.

**The path of blood.**
1. Oxygen-poor blood from the body enters the right atrium.
2. It passes into the right ventricle, which pumps it to the lungs.
3. In the lungs, the blood drops off carbon dioxide and picks up oxygen.
4. Oxygen-rich blood returns to the left atrium.
5. It passes to the left ventricle, the strongest chamber, which pumps it out through the aorta to the rest of the body.

**Valves.** Four one-way valves keep blood flowing in the right direction. The "lub-dub" sound of a heartbeat is the sound of these valves closing.

**The electrical system.** The heart has its own built-in pacemaker, a cluster of cells called the sinoatrial (SA) node in the right atrium. It fires an electrical signal that spreads across the atria, making them contract, then passes through the atrioventricular (AV) node, which adds a short delay so the ventricles can fill, before spreading through the ventricles and making them contract. Nerves and hormones such as adrenaline speed this pacemaker up or slow it down.

**Feeding the heart itself.** The heart muscle gets its own blood supply through the coronary arteries. A heart attack happens when one of these becomes blocked, usually by a blood clot on a fatty plaque, and part of the muscle is starved of oxygen.

At rest, an adult heart beats about 60–100 times a minute and pumps around 5 liters of blood per minute — roughly 7,000 liters a day.
S: The heart is two pumps: the right side sends oxygen-poor blood to the lungs, the left side sends oxygen-rich blood to the body, with valves keeping flow one-way and an electrical pacemaker setting the rhythm.
%%
Q: What causes earthquakes?
A: Most earthquakes are caused by the movement of tectonic plates, the huge slabs of rock that make up Earth's outer shell. The plates float on the hotter, slowly flowing mantle beneath them and move a few centimeters a year — about as fast as your fingernails grow.

Where plates meet, they don't slide past each other smoothly. Friction locks them together along faults while the surrounding rock keeps moving, so strain builds up, often for decades or centuries, like bending a ruler. Eventually the stress overcomes the friction, the rocks slip suddenly, and the stored energy is released as seismic waves that shake the ground. The point underground where the slip starts is the focus (or hypocenter), and the point on the surface directly above it is the epicenter.

There are three main kinds of plate boundaries:

- **Convergent**, where plates push together. When one plate dives under another (subduction), it can produce the most powerful earthquakes, like those off Japan, Chile, and Indonesia, as well as tsunamis.
- **Divergent**, where plates pull apart, such as the Mid-Atlantic Ridge running through Iceland. Earthquakes here are usually smaller.
- **Transform**, where plates slide past each other sideways, like California's San Andreas Fault.

Earthquake size is measured on the moment magnitude scale. Each whole number up means about 32 times more energy released, so a magnitude 7 releases roughly 1,000 times more energy than a magnitude 5.

Scientists can map where large earthquakes are likely over the long term, but they can't predict the exact time. That's why preparation matters: earthquake-resistant building codes, early-warning systems that give a few seconds' notice, and knowing to "drop, cover, and hold on" during shaking.
S: Tectonic plates get stuck along faults while strain builds, then slip suddenly and release energy as seismic waves.
%%
Q: How does GPS know where I am?
A: GPS works by measuring how long radio signals take to arrive from several satellites.

There are about 30 GPS satellites orbiting roughly 20,000 km above Earth, arranged so that at least four are visible from almost anywhere at any time. Each satellite carries extremely precise atomic clocks and continuously broadcasts a signal saying, in effect, "I am satellite number so-and-so, here is my exact position, and this is the exact time I sent this message."

Your phone's receiver picks up these signals and compares the sending time with the time it received them. Since radio waves travel at the speed of light, the delay tells you the distance: a delay of 0.07 seconds means the satellite is about 21,000 km away.

Knowing your distance from one satellite puts you somewhere on a giant sphere around it. A second satellite narrows it to a circle where two spheres intersect, and a third narrows it to two points — one of which is usually far out in space and can be ruled out. This is called trilateration.

Why a fourth satellite? Your phone's clock is nowhere near as precise as an atomic clock, and an error of just one millionth of a second would put you 300 meters off. Using a fourth satellite lets the receiver solve for its own clock error along with its position.

Some fascinating details:

- Relativity matters. The satellites' clocks run slightly faster than clocks on the ground because of weaker gravity, and slightly slower because of their speed. Combined, they'd drift by about 38 microseconds a day — enough to cause errors of kilometers within a day — so the system corrects for it.
- Your phone also uses Wi-Fi networks, cell towers, and other satellite systems such as Europe's Galileo to get a faster, more accurate fix, especially in cities where tall buildings block or reflect signals.
- GPS is one-way: the satellites don't know where you are. Your device works it out by itself.
S: Your device measures how long signals from at least four satellites take to arrive, converts the delays into distances, and works out its position — and its own clock error — from where those distances intersect.
%%

@@ history
Q: What was the Black Death?
A: The Black Death was a devastating pandemic of bubonic plague that swept through Asia, the Middle East, North Africa, and Europe in the mid-14th century. In Europe, its worst years were 1347–1351, and it killed an estimated 30–50% of the population — perhaps 25 million people or more in Europe alone.

**The cause.** It was caused by the bacterium *Yersinia pestis*, carried by fleas living on rats and other rodents. The disease appears to have spread along trade routes from Central Asia and reached Europe through Mediterranean ports; one traditional account traces it to ships arriving in Sicily in October 1347. Besides the bubonic form, with its painful swollen lymph nodes ("buboes"), there was a pneumonic form that infected the lungs and spread directly from person to person through coughing, which was almost always fatal.

**How people responded.** Medieval doctors didn't know about germs. Explanations ranged from bad air ("miasma") to divine punishment or unlucky planetary alignments. Some groups, known as flagellants, whipped themselves in public penance. Tragically, Jewish communities were falsely blamed and attacked in many places. On the practical side, Venice and Ragusa (today's Dubrovnik) introduced isolation periods for arriving ships; the Venetian *quaranta giorni*, "forty days," gave us the word quarantine.

**Long-term effects.** With so many people dead, labor became scarce. Surviving peasants and workers could demand higher wages and better conditions, which weakened the feudal system in Western Europe, even though rulers tried to freeze wages by law. Some historians link the shock to later changes in religion, art, and medicine, and the plague itself returned in waves for centuries, until the last major European outbreaks in the 18th century.
S: A bubonic plague pandemic in the mid-1300s, spread by fleas on rodents, that killed perhaps a third to half of Europe's population and reshaped its economy and society.
%%
Q: How did democracy work in ancient Athens?
A: Athens developed the world's best-known early democracy in the 5th century BCE, after reforms by Cleisthenes around 508 BCE. It was very different from modern democracies.

**Direct, not representative.** Citizens didn't elect representatives to make laws; they voted on laws themselves in the Assembly (the Ekklesia), which met on a hillside called the Pnyx about 40 times a year. Any citizen could attend, speak, and vote, usually by a show of hands. A quorum of 6,000 was needed for some decisions.

**Who counted as a citizen.** Only adult men born of Athenian parents — perhaps 30,000 to 50,000 people out of a total population of a few hundred thousand. Women, enslaved people (a large part of the population), and foreign residents (metics) could not participate.

**Selection by lot.** Most public officials were chosen randomly from volunteers, not elected, because Athenians thought elections favored the rich and famous. The Council of 500, which prepared the Assembly's agenda, was picked by lot, fifty from each of ten tribes, and members served one year. Generals (strategoi) were the main exception: they were elected, since military skill was too important to leave to chance.

**The courts.** Juries were huge — often 201, 501, or more citizens — also chosen by lot and paid a small wage so poorer citizens could serve.

**Ostracism.** Once a year, citizens could vote to exile a politician they considered dangerous for ten years, by scratching his name on a pottery shard (ostrakon).

Athenian democracy had real flaws: it excluded most residents and sometimes made rash decisions under the sway of persuasive speakers. But its ideas — that ordinary citizens could govern themselves, debate openly, and hold officials accountable — influenced political thinkers for more than two thousand years.
S: Male citizens voted directly on laws in the Assembly, most officials and jurors were chosen by lot, and ostracism could exile powerful politicians; women, enslaved people and foreigners were excluded.
%%

@@ cooking
Q: How do I cook a steak perfectly in a pan?
Q: What's the best way to cook steak at home?
A: A great pan-seared steak comes down to a dry surface, a very hot pan, and a thermometer.

**1. Choose the right cut.** Ribeye, sirloin, and New York strip are forgiving and flavorful. Aim for a steak about 2.5–4 cm thick; thin steaks overcook before they brown.

**2. Salt ahead of time.** Season generously with salt at least 40 minutes before cooking, or even the night before, uncovered in the fridge. Salt draws moisture out at first, but given time it's reabsorbed and seasons the meat more deeply, and the surface dries out, which helps browning. If you can't wait 40 minutes, salt right before cooking instead — the in-between period leaves the surface wet.

**3. Take the chill off.** Let the steak sit out for 20–30 minutes and pat it very dry with paper towels.

**4. Heat the pan properly.** Use a heavy cast-iron or stainless-steel pan over high heat until it's smoking slightly, then add a thin layer of a high-smoke-point oil like canola or avocado oil.

**5. Sear and flip often.** Lay the steak in the pan, away from you. Contrary to old advice, flipping every minute or so gives more even cooking. Sear the fat edge too by holding the steak upright with tongs.

**6. Baste.** In the last couple of minutes, turn the heat to medium, add a tablespoon of butter, a crushed garlic clove, and a sprig of thyme or rosemary, tilt the pan, and spoon the foaming butter over the steak.

**7. Use a thermometer.** Pull the steak off the heat about 3–5 °C below your target, since it keeps cooking as it rests: 50–52 °C for medium-rare, 57 °C for medium.

**8. Rest and slice.** Rest it for 5 minutes on a board, then slice against the grain and sprinkle with a little flaky salt.
S: Salt it ahead, pat it dry, sear it in a smoking-hot heavy pan while flipping often, baste with butter at the end, pull it a few degrees early using a thermometer, and rest it before slicing against the grain.
%%

@@ travel
Q: Is traveling around Europe by train a good idea?
Q: How do I plan a trip around Europe by train?
A: Yes — for many routes, trains are the most comfortable and scenic way to see Europe, and they often take you straight from one city center to the next.

**Where trains shine.** High-speed lines link many major cities in a few hours: Paris to Amsterdam, Brussels, or London (via the Eurostar under the Channel), Madrid to Barcelona, Milan to Rome, and much of Germany, Switzerland, and Austria. Once you count getting to the airport and going through security, the train is often as fast as flying for trips under about four hours, and much more pleasant.

**Where they don't.** Long distances across the continent (for example Lisbon to Warsaw), some parts of the Balkans, and islands are often quicker and cheaper by plane, bus, or ferry.

**Tickets vs. passes.**
- *Point-to-point tickets* are best if you have only a few journeys. High-speed and international trains work like airlines: booking two or three months ahead is much cheaper than buying at the station.
- *A rail pass* (Eurail for non-Europeans, Interrail for European residents) lets you take trains on a set number of days. It's worth it for lots of journeys or flexible travel, but note that many high-speed and night trains still require a paid seat reservation on top of the pass.

**Night trains** have made a comeback — routes like Vienna to Venice, Zürich to Amsterdam, or Paris to Berlin let you save a night's accommodation and wake up in a new city. Book a couchette or sleeper compartment for real rest.

**Practical tips.** Use the national railway operators' apps and websites for schedules and prices; aggregator sites can be convenient but sometimes add fees. Keep luggage manageable, since you'll carry it on and off yourself. In some countries, such as Italy, paper regional tickets need to be validated in a machine before boarding. And pack a picnic — eating bread, cheese, and fruit while watching the Alps roll by is one of the great pleasures of European travel.
S: Yes — trains are great between well-connected cities under about four hours apart; book high-speed tickets early, consider a pass only for many journeys, and try a night train.
%%

@@ everyday
Q: What's the right way to do laundry so my clothes last longer?
A: A few habits make clothes last much longer and look better:

**Sort properly.** Separate darks, lights, and whites, and also separate heavy items like towels and jeans from delicate things like T-shirts and blouses, since heavy fabrics rub and wear out lighter ones.

**Read the care labels.** The symbols tell you the maximum temperature, whether something can be tumble-dried, and whether it needs hand-washing. When in doubt, go cooler and gentler.

**Wash cooler.** Most everyday clothes come out clean at 30 °C with modern detergents. Cold and warm washes fade colors less, shrink less, and save energy. Save hot washes (60 °C) for towels, bedding, and heavily soiled items.

**Use less detergent than you think.** Too much leaves residue that makes fabrics stiff and attracts dirt. Follow the dosing line for your water hardness and load size, and skip fabric softener on towels and workout clothes — it reduces absorbency and traps odors.

**Turn clothes inside out** to protect colors and prints, zip up zippers so they don't snag other items, and unbutton shirts so the buttonholes don't stretch.

**Don't overload the machine.** Clothes need room to move to get clean; a loosely filled drum, about three-quarters full, is ideal.

**Go easy on the dryer.** Heat is one of the main causes of shrinkage, fading, and worn-out elastic. Air-dry what you can, especially knits, activewear, and anything with spandex. Hang sweaters flat to dry so they keep their shape.

**Treat stains quickly.** Fresh stains come out far more easily. Blot them, rinse from the back with cold water, and apply a little detergent before washing. Check the stain is gone before drying, since heat sets it.
S: Sort by color and weight, follow care labels, wash at 30 °C with less detergent, turn clothes inside out, don't overload the machine, and air-dry when you can.
%%

@@ writing
Q: Can you rewrite this paragraph to be clearer? "Due to the fact that the meeting was postponed by the management team on account of a number of scheduling conflicts that had arisen, it is the case that the deadline for the submission of the report will now be extended until next Friday."
A: Here's a clearer version:

"Because management postponed the meeting due to scheduling conflicts, the report deadline has moved to next Friday."

That cuts the sentence from 45 words to 16 without losing any information. Here's what changed and why:

1. **"Due to the fact that" → "Because."** Wordy phrases like "due to the fact that," "in order to," and "at this point in time" can almost always be replaced by one word.

2. **Passive to active voice.** "The meeting was postponed by the management team" becomes "management postponed the meeting." Active voice puts the person doing the action first, which is shorter and easier to follow.

3. **"On account of a number of scheduling conflicts that had arisen" → "due to scheduling conflicts."** "A number of" adds nothing, and conflicts don't need to be described as having "arisen."

4. **Removed the empty opener "it is the case that."** Phrases like "it is the case that," "there is," and "it should be noted that" usually delay the real subject. Start with what actually matters.

5. **"The deadline for the submission of the report will now be extended until" → "the report deadline has moved to."** Turning nouns back into verbs or simple modifiers ("submission of the report" → "report") makes sentences lighter.

If you want to emphasize the new date, you could also lead with it: "The report is now due next Friday, because management postponed the meeting due to scheduling conflicts." Readers skimming an email will see the key information first.
S: "Because management postponed the meeting due to scheduling conflicts, the report deadline has moved to next Friday."
%%

@@ math
Q: Can you explain the Monty Hall problem?
A: The Monty Hall problem is a famous probability puzzle based on an old game show:

There are three doors. Behind one is a car; behind the other two are goats. You pick a door, say Door 1. The host, who knows where the car is, opens one of the other two doors — always one with a goat — say Door 3. He then asks: do you want to stick with Door 1 or switch to Door 2?

Intuition says it's 50/50, so it doesn't matter. But you should switch: switching wins the car 2/3 of the time, while sticking wins only 1/3.

**Why it works.** When you first pick, there's a 1/3 chance you picked the car and a 2/3 chance the car is behind one of the other two doors. The host's action doesn't change that first fact — he will always be able to open a goat door, no matter what you picked. What he does is concentrate all of that 2/3 onto the single remaining door, because he's removed the goat from the other pair.

**Walk through every case.** Suppose you always pick Door 1:

- Car behind Door 1 (probability 1/3): the host opens 2 or 3. Switching loses.
- Car behind Door 2 (probability 1/3): the host must open Door 3. Switching wins.
- Car behind Door 3 (probability 1/3): the host must open Door 2. Switching wins.

Switching wins in two out of three equally likely cases.

**An intuition pump.** Imagine 100 doors. You pick one, and the host opens 98 of the others, all goats, leaving one closed. Would you stick with your original 1-in-100 guess, or take the door the host carefully avoided opening? Put that way, switching feels obvious.

The key detail is that the host knows where the car is and never reveals it. If he opened a door at random and just happened to show a goat, then it really would be 50/50.
S: Switch: your first pick has a 1/3 chance, and because the host always reveals a goat, the other unopened door carries the remaining 2/3.
F: Can I check that with a quick simulation?
FA: Sure, here's a short Python simulation:

```python
import random

def play(switch, trials=100_000):
    wins = 0
    for _ in range(trials):
        car = random.randrange(3)
        pick = random.randrange(3)
        # host opens a goat door that isn't the player's pick
        opened = next(d for d in range(3) if d != pick and d != car)
        if switch:
            pick = next(d for d in range(3) if d != pick and d != opened)
        wins += pick == car
    return wins / trials

print("stick: ", play(False))   # about 0.333
print("switch:", play(True))    # about 0.667
```

Run it a few times; the results will hover very close to 1/3 and 2/3.
%%

@@ misc
Q: I want to learn guitar as an adult. Where do I start?
A: Great choice — adults learn guitar successfully all the time, and the first few months are the hardest part. Here's a plan.

**Get a playable instrument.** An inexpensive acoustic or electric guitar is fine, but have it "set up" at a music shop so the strings sit low and are easy to press. High, stiff strings make many beginners quit. Also get a clip-on tuner (or a tuning app) and a few medium picks.

**Learn the basics first.**
1. How to hold the guitar and pick, and how to tune it (standard tuning is E A D G B E, from the thickest string).
2. A handful of open chords: E minor, A minor, D, G, C, and E. These cover thousands of songs.
3. A simple strumming pattern, like down, down-up, up-down-up.

**Practice little and often.** Fifteen to twenty minutes every day beats two hours on the weekend. Your fingertips will be sore for the first couple of weeks; that's normal, and calluses will form. Stop if you feel sharp pain in your hand or wrist.

**Focus on chord changes.** The hardest early skill is switching between chords in time. Practice pairs — G to C, C to D — slowly, over and over, for one minute each. Speed comes later on its own.

**Play real songs early.** Pick simple songs you love that use three or four chords. Playing music you enjoy keeps you motivated far better than exercises alone.

**Use good resources.** Free structured online courses are excellent, and a few lessons with a teacher, even just once a month, can catch bad habits early.

Expect to sound rough for a couple of months. Around the three-month mark, most people who practiced regularly can strum through several songs — and that's when it starts to feel really rewarding.
S: Get a well set-up guitar and a tuner, learn a few open chords and a basic strum, practice 15–20 minutes a day focusing on chord changes, and play real songs early.
%%
""")


# ---------------------------------------------------------------------------
# Generic follow-ups.  Each kind pairs hand-written user phrasings with
# hand-written answer templates; "{S}" is replaced by the short summary of the
# previous answer, so the follow-up genuinely refers to the earlier turn.
# ---------------------------------------------------------------------------

GENERIC_FOLLOWUPS: dict[str, tuple[list[str], list[str]]] = {
    "shorter": (
        [
            "Can you make it shorter?",
            "TL;DR?",
            "That's a lot. What's the short version?",
            "Can you sum that up in a sentence or two?",
            "Could you condense that for me?",
            "Give me just the gist, please.",
            "Shorter please, I'm on my phone.",
        ],
        [
            "Sure. In short: {S}",
            "Short version: {S}",
            "Of course. {S}",
            "Here it is condensed: {S}",
            "In a nutshell: {S}",
        ],
    ),
    "key": (
        [
            "If I only remember one thing from that, what should it be?",
            "What's the most important part?",
            "What's the key takeaway?",
            "So what's the bottom line?",
        ],
        [
            "If you remember just one thing, make it this: {S}",
            "The key takeaway: {S}",
            "The most important part is simply this. {S}",
        ],
    ),
    "sure": (
        [
            "Are you sure about that?",
            "Is that really right?",
            "Hmm, is that accurate?",
        ],
        [
            "Yes, I'm confident about it. To recap: {S}",
            "Yes. That's the standard, well-established answer. In short: {S}",
            "Yes, that's correct. Summarizing it once more: {S}",
        ],
    ),
    "simpler": (
        [
            "Can you explain that more simply?",
            "I'm a total beginner. Can you put that in plain words?",
            "Explain it like I'm five?",
            "Sorry, I'm lost. Can you say that more simply?",
        ],
        [
            "Sure, here's the plain-language version: {S}",
            "Of course. Stripped down to the basics: {S}",
            "Let me simplify. {S}",
        ],
    ),
    "bullets": (
        [
            "Can you put that in bullet points?",
            "Could you turn that into a list?",
            "Can you format that as a quick checklist?",
        ],
        [
            "Sure, here it is as a list:",
            "Here's the same thing as bullet points:",
            "Of course:",
        ],
    ),
    "thanks": (
        [
            "Thanks, that's really helpful!",
            "Great, thank you!",
            "Perfect, thanks.",
            "That makes sense now. Thanks!",
            "Awesome, appreciate it.",
            "Thank you so much, that's exactly what I needed.",
            "Cool, thanks for the help.",
        ],
        [
            "You're welcome! Let me know if you have any other questions.",
            "Glad I could help! Feel free to ask if anything else comes up.",
            "Happy to help — good luck with it, and come back anytime.",
            "Anytime! If you run into trouble, just ask and we can work through it.",
            "You're very welcome. I hope it goes well!",
            "My pleasure. Let me know how it turns out!",
        ],
    ),
}

# Prefixes used when the user switches to a new question in the same chat.
TRANSITIONS = [
    "Thanks. Another question: ",
    "Different question — ",
    "One more thing: ",
    "Okay, next question. ",
    "Got it. Also: ",
    "Great. ",
    "Thanks! Now I'm wondering: ",
]

# Occasional openers for the first user message.
OPENERS = ["Hi! ", "Hello! ", "Quick question: ", "Hey! ", "Hi there. "]

GENERAL_SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a friendly, knowledgeable assistant. Answer clearly and accurately.",
    "You are a helpful assistant. Keep answers practical and well organized, and use Markdown where it helps.",
    "You are an AI assistant that gives accurate, concise answers. If you are unsure about something, say so.",
    "You are a patient tutor who explains things step by step.",
    "You are a helpful, honest assistant. Prefer short answers unless the user asks for detail.",
]

CATEGORY_SYSTEM_PROMPTS = {
    "cooking": [
        "You are a friendly home-cooking assistant. Give practical advice that works in an ordinary kitchen.",
    ],
    "travel": [
        "You are a travel planning assistant. Be practical, mention safety where relevant, and keep suggestions realistic for a normal budget.",
    ],
    "programming": [
        "You are an expert programming assistant. Prefer short, working code examples with brief explanations.",
        "You are a senior Python developer helping a colleague. Be precise and idiomatic.",
    ],
    "math": [
        "You are a math tutor. Show your working step by step and check the answer at the end.",
    ],
    "history": [
        "You are a knowledgeable history teacher. Give balanced explanations with key dates.",
    ],
    "science": [
        "You are a science communicator. Explain ideas accurately in plain language, avoiding unnecessary jargon.",
    ],
    "writing": [
        "You are a writing assistant who helps people write clearly. Keep a warm, encouraging tone.",
    ],
    "everyday": [
        "You are a practical, down-to-earth assistant for everyday questions around the home.",
    ],
    "health": [
        "You are a wellness assistant. Give general, evidence-based information and suggest seeing a professional for medical concerns.",
    ],
}

# Categories whose prose answers can sensibly be re-rendered as bullet lists.
BULLET_CATEGORIES = {"cooking", "travel", "history", "science", "everyday", "health", "misc", "programming"}


# ---------------------------------------------------------------------------
# Parsing the building blocks
# ---------------------------------------------------------------------------

_MARKER = re.compile(r"^(Q|A|S|F|FA):\s?(.*)$")


def parse_blocks(blocks: list[str]) -> list[dict]:
    """Parse the BLOCKS mini-format into a list of entry dicts."""
    entries: list[dict] = []
    category = None
    cur: dict | None = None
    field: str | None = None  # field currently collecting continuation lines

    def new_entry() -> dict:
        return {"category": category, "q": [], "a": "", "s": "", "f": []}

    def finish() -> None:
        nonlocal cur, field
        if cur is not None:
            cur["a"] = cur["a"].strip()
            cur["s"] = cur["s"].strip()
            cur["f"] = [(q.strip(), a.strip()) for q, a in cur["f"]]
            if not cur["q"] or not cur["a"]:
                raise ValueError(f"incomplete entry: {cur!r}")
            for q, a in cur["f"]:
                if not q or not a:
                    raise ValueError(f"incomplete follow-up in entry: {cur['q'][0]!r}")
            entries.append(cur)
        cur = None
        field = None

    for block in blocks:
        for line in block.split("\n"):
            if line.startswith("@@ "):
                finish()
                category = line[3:].strip()
                continue
            if line.strip() == "%%":
                finish()
                continue
            m = _MARKER.match(line)
            if m:
                key, rest = m.groups()
                if cur is None:
                    cur = new_entry()
                if key == "Q":
                    cur["q"].append(rest.strip())
                    field = None
                elif key == "A":
                    cur["a"] = rest + "\n"
                    field = "a"
                elif key == "S":
                    cur["s"] = rest + "\n"
                    field = "s"
                elif key == "F":
                    cur["f"].append([rest, ""])
                    field = None
                elif key == "FA":
                    cur["f"][-1][1] = rest + "\n"
                    field = "fa"
                continue
            if cur is None:
                if line.strip():
                    raise ValueError(f"text outside an entry: {line!r}")
                continue
            if field == "a":
                cur["a"] += line + "\n"
            elif field == "s":
                cur["s"] += line + "\n"
            elif field == "fa":
                cur["f"][-1][1] += line + "\n"
            elif line.strip():
                raise ValueError(f"unexpected line: {line!r}")
        finish()
    return entries


# ---------------------------------------------------------------------------
# Composing conversations
# ---------------------------------------------------------------------------

_LIST_LINE = re.compile(r"^\s*(?:[-*]|\d+\.|```|\*\*)")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")


def bullet_sentences(entry: dict) -> list[str] | None:
    """Split a prose answer into sentences for a 'turn it into a list' follow-up."""
    if entry["category"] not in BULLET_CATEGORIES:
        return None
    text = entry["a"]
    if any(_LIST_LINE.match(line) for line in text.split("\n")):
        return None
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(" ".join(text.split())) if s.strip()]
    if not 3 <= len(sentences) <= 9:
        return None
    return sentences


LONG_ANSWER_WORDS = 200


class Deck:
    """Hands out main entries so each is used about equally often."""

    def __init__(self, entries: list[dict], rng: random.Random):
        self.entries = entries
        self.rng = rng
        self.order: list[int] = []

    def _refill(self) -> None:
        # Long, multi-paragraph answers appear twice per cycle so the dataset
        # has a healthy share of long assistant turns.
        idx = list(range(len(self.entries)))
        idx += [i for i, e in enumerate(self.entries) if len(e["a"].split()) >= LONG_ANSWER_WORDS]
        self.rng.shuffle(idx)
        self.order.extend(idx)

    def draw(self, category: str | None = None, exclude: set[int] = frozenset()) -> int:
        for _ in range(2):
            for pos, i in enumerate(self.order):
                if i in exclude:
                    continue
                if category is None or self.entries[i]["category"] == category:
                    return self.order.pop(pos)
            self._refill()
        # category exhausted for this conversation: take anything not excluded
        for pos, i in enumerate(self.order):
            if i not in exclude:
                return self.order.pop(pos)
        raise RuntimeError("ran out of entries")


def exchange_counts(n: int, rng: random.Random) -> list[int]:
    """Number of user/assistant exchanges per conversation (1..6), mostly short chats."""
    weights = {1: 172, 2: 24, 3: 11, 4: 6, 5: 4, 6: 3}  # tuned for n=220
    total = sum(weights.values())
    counts: list[int] = []
    for k, w in weights.items():
        counts += [k] * round(n * w / total)
    counts = (counts + [1] * n)[:n]
    rng.shuffle(counts)
    return counts


def schemas(n: int, rng: random.Random) -> list[str]:
    n_share = round(n * 0.6)
    out = ["sharegpt"] * n_share + ["openai"] * (n - n_share)
    rng.shuffle(out)
    return out


def build_conversation(entries: list[dict], deck: Deck, n_ex: int, rng: random.Random) -> list[tuple[str, str]]:
    """Return a list of (role, text) with roles system/user/assistant."""
    turns: list[tuple[str, str]] = []
    used: set[int] = set()

    first = deck.draw()
    used.add(first)
    entry = entries[first]
    category = entry["category"]

    if rng.random() < 0.25:
        cat_prompts = CATEGORY_SYSTEM_PROMPTS.get(category)
        if cat_prompts and rng.random() < 0.6:
            system = rng.choice(cat_prompts)
        else:
            system = rng.choice(GENERAL_SYSTEM_PROMPTS)
        turns.append(("system", system))

    question = rng.choice(entry["q"])
    if rng.random() < 0.12:
        question = rng.choice(OPENERS) + question
    turns.append(("user", question))
    turns.append(("assistant", entry["a"]))

    last_was_main = True
    followups_left = list(entry["f"])
    generic_used: set[str] = set()
    transitions = list(TRANSITIONS)
    rng.shuffle(transitions)

    for ex in range(1, n_ex):
        is_last = ex == n_ex - 1
        options: list[str] = []
        if followups_left:
            options += ["specific"] * 5
        if last_was_main:
            if len(entry["s"].split()) >= 6:
                options += ["generic"] * 3
            if bullet_sentences(entry) and "bullets" not in generic_used:
                options += ["bullets"]
        options += ["new"] * 3
        if is_last and n_ex >= 2 and "thanks" not in generic_used:
            options += ["thanks"] * 3
        choice = rng.choice(options)

        if choice == "specific":
            q, a = followups_left.pop(0)
            turns.append(("user", q))
            turns.append(("assistant", a))
            last_was_main = False
        elif choice == "generic":
            kinds = [k for k in ("shorter", "key", "sure", "simpler") if k not in generic_used]
            if not kinds:
                kinds = ["shorter"]
            kind = rng.choice(kinds)
            generic_used.add(kind)
            qs, ans = GENERIC_FOLLOWUPS[kind]
            turns.append(("user", rng.choice(qs)))
            turns.append(("assistant", rng.choice(ans).format(S=entry["s"])))
            last_was_main = False
        elif choice == "bullets":
            generic_used.add("bullets")
            qs, ans = GENERIC_FOLLOWUPS["bullets"]
            items = "\n".join(f"- {s}" for s in bullet_sentences(entry))
            turns.append(("user", rng.choice(qs)))
            turns.append(("assistant", rng.choice(ans) + "\n\n" + items))
            last_was_main = False
        elif choice == "thanks":
            generic_used.add("thanks")
            qs, ans = GENERIC_FOLLOWUPS["thanks"]
            turns.append(("user", rng.choice(qs)))
            turns.append(("assistant", rng.choice(ans)))
            last_was_main = False
        else:  # new main question, preferably on the same broad topic
            nxt = deck.draw(category if rng.random() < 0.8 else None, exclude=used)
            used.add(nxt)
            entry = entries[nxt]
            turns.append(("user", transitions.pop() + rng.choice(entry["q"])))
            turns.append(("assistant", entry["a"]))
            last_was_main = True
            followups_left = list(entry["f"])
    return turns


SHAREGPT_ROLE = {"system": "system", "user": "human", "assistant": "gpt"}


def to_record(conv_id: str, schema: str, turns: list[tuple[str, str]]) -> dict:
    if schema == "sharegpt":
        return {
            "id": conv_id,
            "conversations": [{"from": SHAREGPT_ROLE[r], "value": t} for r, t in turns],
        }
    return {
        "id": conv_id,
        "messages": [{"role": r, "content": t} for r, t in turns],
    }


def generate(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    entries = parse_blocks(BLOCKS)
    deck = Deck(entries, rng)
    counts = exchange_counts(n, rng)
    kinds = schemas(n, rng)
    records = []
    for i in range(n):
        turns = build_conversation(entries, deck, counts[i], rng)
        records.append(to_record(f"demo-{i:04d}", kinds[i], turns))
    return records


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("-n", "--num", type=int, default=DEFAULT_COUNT, help="number of conversations")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)

    records = generate(args.num, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    n_entries = len(parse_blocks(BLOCKS))
    print(f"wrote {len(records)} conversations from {n_entries} hand-written entries to {args.output}")


if __name__ == "__main__":
    main()
